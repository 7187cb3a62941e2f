//! The link layer in front of an IP packet: none on a TUN device ([`Layer::L3`]), an Ethernet header with up
//! to two VLAN tags on a TAP device ([`Layer::L2`]).
//!
//! The offload engine works on the IP packet after the link header; the link header itself is copied as it is
//! (in front of each segment of a split, and once in front of a merged packet). So all a layer has to say is
//! how long the link header of a frame is and which IP version its EtherType announces.

use crate::OffloadError;
use crate::wire::IpVersion;

/// What a device's packets are: IP packets (a TUN device) or Ethernet frames (a TAP device).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Layer {
    /// IP packets, nothing in front (TUN, `IFF_TUN`).
    #[default]
    L3,
    /// Ethernet frames: destination, source, EtherType, 802.1Q/802.1ad tags passed through untouched (TAP,
    /// `IFF_TAP`).
    L2,
}

/// Bytes of an untagged Ethernet header: destination, source, EtherType.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// The longest link header the engine splits and coalesces behind: an Ethernet header with two VLAN tags
/// (802.1ad outer, 802.1Q inner). Frames with more tags pass through as they are.
pub const MAX_LINK_HEADER_LEN: usize = ETHERNET_HEADER_LEN + 2 * VLAN_TAG_LEN;

/// Bytes of one VLAN tag (its TPID, which stands where the EtherType would, and the tag control field).
const VLAN_TAG_LEN: usize = 4;

/// EtherTypes the link header is read by.
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88a8;

/// The link header of a frame carrying an IP packet, as [`LinkHeader::parse`] found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkHeader {
    /// Its length: where the IP packet starts (0 for [`Layer::L3`]).
    pub len: usize,
    /// The IP version its EtherType announces (`None` for [`Layer::L3`], where the packet says it).
    pub version: Option<IpVersion>,
}

impl LinkHeader {
    /// The link header of `frame` on a device of `layer`, when it carries IPv4 or IPv6.
    ///
    /// # Errors
    /// For [`Layer::L2`]: [`OffloadError::TooShort`] for a frame shorter than an Ethernet header or a VLAN
    /// tag with no EtherType after it; [`OffloadError::Malformed`] for an EtherType that is not IPv4 or IPv6
    /// (ARP, LLDP, three or more tags: such frames are passed on whole, never split or merged).
    pub fn parse(layer: Layer, frame: &[u8]) -> Result<LinkHeader, OffloadError> {
        match layer {
            Layer::L3 => Ok(LinkHeader {
                len: 0,
                version: None,
            }),
            Layer::L2 => Self::ethernet(frame),
        }
    }

    fn ethernet(frame: &[u8]) -> Result<LinkHeader, OffloadError> {
        let mut len = ETHERNET_HEADER_LEN;
        for tags in 0..=2 {
            let Some(&[hi, lo]) = frame.get(len - 2..len) else {
                return Err(OffloadError::TooShort {
                    what: if tags == 0 {
                        "Ethernet header"
                    } else {
                        "Ethernet header after a VLAN tag"
                    },
                    need: len,
                    have: frame.len(),
                });
            };
            let version = match u16::from_be_bytes([hi, lo]) {
                ETHERTYPE_IPV4 => IpVersion::V4,
                ETHERTYPE_IPV6 => IpVersion::V6,
                ETHERTYPE_VLAN | ETHERTYPE_QINQ if tags < 2 => {
                    len += VLAN_TAG_LEN;
                    continue;
                }
                _ => return Err(OffloadError::Malformed("EtherType is not IPv4 or IPv6")),
            };
            return Ok(LinkHeader {
                len,
                version: Some(version),
            });
        }
        Err(OffloadError::Malformed("more than two VLAN tags"))
    }

    /// Checks that the IP packet after the header is of the version the EtherType announced.
    ///
    /// # Errors
    /// [`OffloadError::Malformed`] when they differ (an EtherType of IPv4 over an IPv6 packet, say).
    pub fn check_version(&self, version: IpVersion) -> Result<(), OffloadError> {
        match self.version {
            Some(announced) if announced != version => Err(OffloadError::Malformed(
                "EtherType disagrees with the IP version",
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(types: &[u16]) -> Vec<u8> {
        let mut f = vec![0xaa; 12];
        for (i, t) in types.iter().enumerate() {
            f.extend_from_slice(&t.to_be_bytes());
            if i + 1 < types.len() {
                f.extend_from_slice(&[0, 7]);
            }
        }
        f
    }

    #[test]
    fn untagged_and_tagged_frames_give_the_header_length_and_version() {
        let cases = [
            (&[ETHERTYPE_IPV4][..], 14, IpVersion::V4),
            (&[ETHERTYPE_IPV6][..], 14, IpVersion::V6),
            (&[ETHERTYPE_VLAN, ETHERTYPE_IPV4][..], 18, IpVersion::V4),
            (
                &[ETHERTYPE_QINQ, ETHERTYPE_VLAN, ETHERTYPE_IPV6][..],
                22,
                IpVersion::V6,
            ),
        ];
        for (types, len, version) in cases {
            let header = LinkHeader::parse(Layer::L2, &frame(types)).unwrap();
            assert_eq!(
                (header.len, header.version),
                (len, Some(version)),
                "{types:x?}"
            );
        }
    }

    #[test]
    fn a_frame_shorter_than_an_ethernet_header_is_too_short() {
        for len in 0..14 {
            let err = LinkHeader::parse(Layer::L2, &frame(&[ETHERTYPE_IPV4])[..len]).unwrap_err();
            assert!(
                matches!(err, OffloadError::TooShort { need: 14, .. }),
                "{err:?}"
            );
        }
    }

    #[test]
    fn a_vlan_tag_with_nothing_after_it_is_too_short() {
        let mut f = frame(&[ETHERTYPE_VLAN]);
        f.extend_from_slice(&[0, 7]);
        let err = LinkHeader::parse(Layer::L2, &f).unwrap_err();
        assert!(
            matches!(
                err,
                OffloadError::TooShort {
                    need: 18,
                    have: 16,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn arp_and_three_tags_are_not_ip() {
        for types in [
            &[0x0806][..],
            &[
                ETHERTYPE_VLAN,
                ETHERTYPE_VLAN,
                ETHERTYPE_VLAN,
                ETHERTYPE_IPV4,
            ][..],
        ] {
            let err = LinkHeader::parse(Layer::L2, &frame(types)).unwrap_err();
            assert!(matches!(err, OffloadError::Malformed(_)), "{err:?}");
        }
    }

    #[test]
    fn an_ethertype_of_ipv4_over_an_ipv6_packet_disagrees() {
        let header = LinkHeader::parse(Layer::L2, &frame(&[ETHERTYPE_IPV4])).unwrap();
        assert!(header.check_version(IpVersion::V4).is_ok());
        assert!(matches!(
            header.check_version(IpVersion::V6),
            Err(OffloadError::Malformed(_))
        ));
        // On L3 the packet speaks for itself.
        let none = LinkHeader::parse(Layer::L3, &[]).unwrap();
        assert_eq!(none.len, 0);
        assert!(none.check_version(IpVersion::V6).is_ok());
    }
}
