//! A checked TCP stream: the sender writes a deterministic pseudo-random stream, both ends hash what
//! crossed the wire with SHA-256, and the caller compares the two digests.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tun_test_support::retry_eintr;
pub use tun_test_support::stream::{PseudoRandom, StreamHash, Summary};

/// Bytes handed to one `write` (and the granularity of the generator).
const CHUNK: usize = 256 * 1024;

/// Connects to `to` and sends `bytes` bytes of the stream of `seed`; every socket operation is bounded by
/// `timeout`.
pub fn send(to: SocketAddr, bytes: u64, seed: u64, timeout: Duration) -> io::Result<Summary> {
    let mut stream = TcpStream::connect_timeout(&to, timeout)?;
    stream.set_write_timeout(Some(timeout))?;
    let mut generator = PseudoRandom::new(seed);
    let mut hash = StreamHash::default();
    let mut buf = vec![0u8; CHUNK];
    let mut left = bytes;
    while left > 0 {
        let n = usize::try_from(left).map_or(CHUNK, |l| l.min(CHUNK));
        let chunk = &mut buf[..n];
        generator.fill(chunk);
        hash.update(chunk);
        stream.write_all(chunk)?;
        left -= n as u64;
    }
    stream.shutdown(std::net::Shutdown::Write)?;
    // Wait for the receiver to close, so that "sent" means "received by the peer's socket".
    stream.set_read_timeout(Some(timeout))?;
    let mut rest = [0u8; 16];
    while retry_eintr(|| stream.read(&mut rest))? > 0 {}
    Ok(hash.finish())
}

/// Accepts one connection on `listener` and hashes everything it receives until the sender closes. Reads
/// are bounded by `timeout` each.
pub fn receive(listener: &TcpListener, timeout: Duration) -> io::Result<Summary> {
    let (mut stream, _) = listener.accept()?;
    stream.set_read_timeout(Some(timeout))?;
    let mut hash = StreamHash::default();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = retry_eintr(|| stream.read(&mut buf))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
    }
    Ok(hash.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // What crossed is every byte asked for, of the stream of the seed given.
        let len = 3 * CHUNK + 5;
        assert_eq!(
            received,
            Summary {
                bytes: len as u64,
                sha256: tun_test_support::stream::sha256_hex(
                    &tun_test_support::stream::pseudo_random(len, 42)
                ),
            }
        );
    }
}
