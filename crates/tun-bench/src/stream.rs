//! A checked TCP stream: the sender writes a deterministic pseudo-random stream, both ends hash what
//! crossed the wire with SHA-256, and the caller compares the two digests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tun_test_support::retry_eintr;

/// Bytes handed to one `write` (and the granularity of the generator).
const CHUNK: usize = 256 * 1024;

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

/// What one end saw: how many bytes and their SHA-256.
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

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write as _;
    digest.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Connects to `to` and sends `bytes` bytes of the stream of `seed`; every socket operation is bounded by
/// `timeout`.
pub fn send(to: SocketAddr, bytes: u64, seed: u64, timeout: Duration) -> io::Result<Summary> {
    let mut stream = TcpStream::connect_timeout(&to, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    let mut generator = PseudoRandom::new(seed);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let chunk = &mut buf[..n];
        generator.fill(chunk);
        hasher.update(&*chunk);
        stream.write_all(chunk)?;
        left -= n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close, so that "sent" means "received by the peer's socket".
    stream.set_read_timeout(Some(timeout))?;
    let mut rest = [0u8; 16];
    while retry_eintr(|| stream.read(&mut rest))? > 0 {}
    Ok(Summary {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

/// Accepts one connection on `listener` and hashes everything it receives until the sender closes. Reads
/// are bounded by `timeout` each.
pub fn receive(listener: &TcpListener, timeout: Duration) -> io::Result<Summary> {
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(timeout))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    loop {
        let n = retry_eintr(|| stream.read(&mut buf))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok(Summary {
        bytes,
        sha256: hex(&hasher.finalize()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_does_not_depend_on_how_it_is_cut() {
        let mut whole = vec![0u8; 64];
        PseudoRandom::new(7).fill(&mut whole);
        let mut parts = vec![0u8; 64];
        let mut generator = PseudoRandom::new(7);
        generator.fill(&mut parts[..16]);
        generator.fill(&mut parts[16..]);
        assert_eq!(whole, parts);
        let mut other = vec![0u8; 64];
        PseudoRandom::new(8).fill(&mut other);
        assert_ne!(whole, other);
    }

    #[test]
    fn sender_and_receiver_agree_over_loopback() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let timeout = Duration::from_secs(10);
        let receiver = std::thread::spawn(move || receive(&listener, timeout));
        let sent = send(addr, 3 * CHUNK as u64 + 5, 42, timeout).expect("send");
        let received = receiver.join().expect("join").expect("receive");
        assert_eq!(sent, received);
        assert_eq!(sent.sha256.len(), 64);
    }
}
