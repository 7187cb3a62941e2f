//! Test data that shows loss: a deterministic pseudo-random stream, the SHA-256 of what was sent or
//! received, to compare the two ends of a transfer, and a TCP transfer between two namespaces.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::NetNs;
use crate::io::retry_eintr;

/// A splitmix64 generator: fast, deterministic from its seed, and good enough that a dropped, duplicated
/// or reordered block of the stream changes the digest.
#[derive(Debug, Clone)]
pub struct PseudoRandom {
    state: u64,
}

impl PseudoRandom {
    /// A generator whose output depends only on `seed`.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with the next bytes of the stream. Calls with lengths that are multiples of 8 give
    /// the same stream however the output is cut.
    pub fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let word = self.next_u64().to_le_bytes();
            tail.copy_from_slice(&word[..tail.len()]);
        }
    }
}

/// `len` bytes of the stream of `seed`.
#[must_use]
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    PseudoRandom::new(seed).fill(&mut data);
    data
}

/// What one end of a transfer saw: how many bytes and their SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Bytes sent or received.
    pub bytes: u64,
    /// Lower-case hex SHA-256 of those bytes.
    pub sha256: String,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "bytes {} sha256 {}", self.bytes, self.sha256)
    }
}

/// Counts and hashes the bytes of a stream as they pass.
#[derive(Debug, Clone, Default)]
pub struct StreamHash {
    hasher: Sha256,
    bytes: u64,
}

impl StreamHash {
    /// Adds the next bytes of the stream.
    pub fn update(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }

    /// The bytes seen and their digest.
    #[must_use]
    pub fn finish(self) -> Summary {
        Summary {
            bytes: self.bytes,
            sha256: hex(&self.hasher.finalize()),
        }
    }
}

/// Sends `data` over TCP from namespace `from` to `addr`, listened on in namespace `to`, and returns what
/// arrived there: how many bytes and their SHA-256. Every socket call is bounded by `timeout`.
///
/// # Errors
/// What failed (bind, accept, connect, send, receive), with what it was given.
pub fn tcp_send(
    from: &NetNs,
    to: &NetNs,
    addr: SocketAddr,
    data: &[u8],
    timeout: Duration,
) -> Result<Summary, String> {
    let listener = to
        .run_in(|| TcpListener::bind(addr))
        .map_err(|e| format!("bind {addr}: {e}"))?;
    let receiver = std::thread::spawn(move || -> Result<Summary, String> {
        let (mut stream, _) =
            retry_eintr(|| listener.accept()).map_err(|e| format!("accept: {e}"))?;
        stream
            .set_read_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        let mut hash = StreamHash::default();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            match retry_eintr(|| stream.read(&mut buf)) {
                Ok(0) => break,
                Ok(n) => hash.update(&buf[..n]),
                Err(e) => return Err(format!("receive after {} bytes: {e}", hash.bytes)),
            }
        }
        Ok(hash.finish())
    });
    let sent = (|| -> Result<(), String> {
        let mut stream = from
            .run_in(|| TcpStream::connect_timeout(&addr, timeout))
            .map_err(|e| format!("connect {addr}: {e}"))?;
        stream
            .set_write_timeout(Some(timeout))
            .map_err(|e| e.to_string())?;
        for chunk in data.chunks(256 * 1024) {
            stream.write_all(chunk).map_err(|e| format!("send: {e}"))?;
        }
        stream
            .shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown: {e}"))
    })();
    if let Err(e) = sent {
        // Unblock the receiver (if it accepted nothing, connect to it so that accept returns).
        let _ = to.run_in(|| TcpStream::connect_timeout(&addr, Duration::from_secs(1)));
        let _ = receiver.join();
        return Err(e);
    }
    receiver
        .join()
        .map_err(|_| "the receiver panicked".to_owned())?
}

/// Lower-case hex SHA-256 of `data`.
#[must_use]
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_does_not_depend_on_how_it_is_cut() {
        let whole = pseudo_random(64, 7);
        let mut parts = vec![0u8; 64];
        let mut generator = PseudoRandom::new(7);
        generator.fill(&mut parts[..16]);
        generator.fill(&mut parts[16..]);
        assert_eq!(whole, parts);
        assert_ne!(whole, pseudo_random(64, 8));
    }

    #[test]
    fn hashing_in_pieces_is_hashing_the_whole() {
        let data = pseudo_random(1000, 1);
        let mut hash = StreamHash::default();
        hash.update(&data[..333]);
        hash.update(&data[333..]);
        let summary = hash.finish();
        assert_eq!(summary.bytes, 1000);
        assert_eq!(summary.sha256, sha256_hex(&data));
        // The digest of nothing, as `sha256sum` prints it.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
