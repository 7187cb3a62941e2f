//! WireGuard keys: 32 bytes, base64 in configuration files, hex in the configuration protocol.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use boringtun::x25519;

/// A Curve25519 key (private, public or preshared): 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Key(pub(crate) [u8; 32]);

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// Not valid base64.
    #[error("not a base64 key")]
    Base64,
    /// Not valid hex.
    #[error("not a hex key")]
    Hex,
    /// Decoded, but not to 32 bytes.
    #[error("a key is 32 bytes, this one is {0}")]
    Length(usize),
}

impl Key {
    /// The 44-character base64 form `wg genkey` prints.
    pub(crate) fn from_base64(text: &str) -> Result<Key, KeyError> {
        let bytes = BASE64.decode(text.trim()).map_err(|_| KeyError::Base64)?;
        Self::from_slice(&bytes)
    }

    /// The 64-digit hex form of the configuration protocol (either case).
    pub(crate) fn from_hex(text: &str) -> Result<Key, KeyError> {
        let bytes = hex::decode(text).map_err(|_| KeyError::Hex)?;
        Self::from_slice(&bytes)
    }

    fn from_slice(bytes: &[u8]) -> Result<Key, KeyError> {
        <[u8; 32]>::try_from(bytes)
            .map(Key)
            .map_err(|_| KeyError::Length(bytes.len()))
    }

    /// Lower-case hex, as the configuration protocol writes keys.
    pub(crate) fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Base64, as `wg` and configuration files show keys.
    pub(crate) fn to_base64(self) -> String {
        BASE64.encode(self.0)
    }

    /// The all-zero key: "no key" in the configuration protocol.
    pub(crate) fn is_zero(&self) -> bool {
        self.0 == [0; 32]
    }

    /// The public key of this private key.
    pub(crate) fn public_key(&self) -> Key {
        Key(x25519::PublicKey::from(&x25519::StaticSecret::from(self.0)).to_bytes())
    }
}

/// Private and preshared keys must not end up in logs: only a prefix of the public form is shown.
impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Key({}…)", &self.to_base64()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_and_hex_name_the_same_key() {
        let key = Key::from_base64("yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=").unwrap();
        let hex = key.to_hex();
        assert_eq!(hex.len(), 64);
        assert_eq!(Key::from_hex(&hex).unwrap(), key);
        assert_eq!(Key::from_hex(&hex.to_uppercase()).unwrap(), key);
        assert_eq!(
            key.to_base64(),
            "yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
        );
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert_eq!(Key::from_hex("zz"), Err(KeyError::Hex));
        assert_eq!(Key::from_hex("00"), Err(KeyError::Length(1)));
        assert_eq!(Key::from_base64("!!"), Err(KeyError::Base64));
        assert_eq!(Key::from_base64("AAAA"), Err(KeyError::Length(3)));
    }

    #[test]
    fn the_public_key_is_the_curve25519_base_point_multiple() {
        // RFC 7748, section 6.1: Alice's private and public keys.
        let private =
            Key::from_hex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        assert_eq!(
            private.public_key().to_hex(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }
}
