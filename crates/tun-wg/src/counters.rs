//! What the endpoint did and dropped, counted without locks; printed on SIGUSR1 and at exit.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($(#[doc = $doc:literal])* $name:ident,)*) => {
        /// Event counters of the whole endpoint.
        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $($(#[doc = $doc])* pub(crate) $name: AtomicU64,)*
        }

        impl Counters {
            /// Every counter by name, in declaration order.
            pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
                vec![$((stringify!($name), self.$name.load(Ordering::Relaxed)),)*]
            }
        }
    };
}

counters! {
    /// IP packets read from the TUN device.
    tun_packets_read,
    /// IP packets written to the TUN device (after decryption).
    tun_packets_written,
    /// Datagrams sent (data, handshakes, keepalives, cookie replies).
    udp_datagrams_sent,
    /// Datagrams received.
    udp_datagrams_received,
    /// `sendmsg` calls that carried several datagrams (GSO).
    udp_gso_sends,
    /// Receives that brought several datagrams (GRO).
    udp_gro_receives,
    /// Handshakes completed (either side).
    handshakes,
    /// Outgoing packets whose destination no peer's allowed IPs hold.
    dropped_no_peer_for_destination,
    /// Outgoing packets to a peer without an endpoint, or without our private key.
    dropped_no_endpoint,
    /// Datagrams that are no WireGuard message (bad type or length).
    dropped_malformed,
    /// Handshake initiations with a bad MAC (not for our public key).
    dropped_bad_mac,
    /// Handshakes from keys that are not our peers, and messages for receiver indexes we never gave out.
    dropped_unknown_peer,
    /// Data packets whose counter was seen before (replays) or is too old.
    dropped_replay,
    /// Messages that failed authentication (AEAD tag, handshake decryption, timestamps).
    dropped_bad_auth,
    /// Data for a session we no longer (or never) had.
    dropped_no_session,
    /// Decrypted packets whose inner source address is outside the sending peer's allowed IPs.
    dropped_source_not_allowed,
    /// Handshakes refused because the endpoint is under load (a cookie reply was sent instead).
    cookie_replies_sent,
    /// Other protocol errors.
    dropped_other,
    /// `sendmsg` failures.
    udp_send_errors,
    /// `recvmsg` failures other than the receive timeout.
    udp_receive_errors,
    /// Failed TUN writes (per batch).
    tun_write_errors,
    /// Failed TUN reads.
    tun_read_errors,
}

impl Counters {
    /// Adds `n` to `counter`.
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The sum of every `dropped_*` counter.
    pub(crate) fn dropped(&self) -> u64 {
        self.snapshot()
            .iter()
            .filter(|(name, _)| name.starts_with("dropped_"))
            .map(|(_, n)| n)
            .sum()
    }
}

impl fmt::Display for Counters {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, value) in self.snapshot() {
            writeln!(f, "  {name}: {value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_summed_and_every_counter_printed() {
        let c = Counters::default();
        Counters::add(&c.dropped_replay, 2);
        Counters::add(&c.dropped_malformed, 3);
        Counters::add(&c.tun_packets_read, 9);
        assert_eq!(c.dropped(), 5);
        let text = c.to_string();
        assert!(text.contains("  dropped_replay: 2\n"));
        assert_eq!(text.lines().count(), c.snapshot().len());
    }
}
