//! The configuration protocol's UNIX socket: `/var/run/wireguard/NAME.sock`, what `wg` talks to.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use crate::device::Device;
use crate::uapi::{UapiError, parse_set, write_get};

/// Where the sockets live (wireguard-go's and wg's `/var/run/wireguard`).
pub(crate) const SOCKET_DIR: &str = "/var/run/wireguard";

/// The longest line read: wireguard-go reads lines with Go's default scanner limit.
const MAX_LINE: usize = 64 * 1024;

/// The most lines of one transaction (a full configuration of thousands of peers fits).
const MAX_LINES: usize = 1 << 20;

/// The most bytes of one transaction, which is held whole until its empty line: the line limit at 64 bytes a
/// line, what a million `allowed_ip` lines take.
const MAX_REQUEST_BYTES: usize = 64 << 20;

/// How long a client may stay silent in the middle of a request.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);

/// Clients served at once; each holds at most one request of [`MAX_REQUEST_BYTES`] in memory.
const MAX_CLIENTS: usize = 8;

/// The socket path of interface `name`.
pub(crate) fn socket_path(name: &str) -> PathBuf {
    Path::new(SOCKET_DIR).join(format!("{name}.sock"))
}

/// Creates the listening socket for `name`: the directory 0755, the socket 0600. A socket file left by a
/// dead process is replaced; one that answers belongs to a running endpoint and is an error.
pub(crate) fn listen(name: &str) -> std::io::Result<(UnixListener, PathBuf)> {
    std::fs::create_dir_all(SOCKET_DIR)?;
    std::fs::set_permissions(SOCKET_DIR, std::fs::Permissions::from_mode(0o755))?;
    let path = socket_path(name);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("{} is served by a running process", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok((listener, path))
}

/// Serves each client in a thread of its own, up to [`MAX_CLIENTS`] at once, until the endpoint stops: a
/// client that sends slowly (each byte within [`CLIENT_TIMEOUT`]) holds up only itself, as with
/// wireguard-go. `set` and `get` are serialised by the configuration's lock.
pub(crate) fn serve(device: &Arc<Device>, listener: &UnixListener) {
    let (free, slots) = mpsc::sync_channel(MAX_CLIENTS);
    for _ in 0..MAX_CLIENTS {
        let _ = free.send(());
    }
    for stream in listener.incoming() {
        if device.stopping.load(Ordering::Relaxed) {
            return;
        }
        let Ok(stream) = stream else { continue };
        // Every slot taken: the next client waits here until one is given back.
        if slots.recv().is_err() {
            return;
        }
        let slot = Slot(free.clone());
        let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
        let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
        let device = device.clone();
        // A thread that cannot start drops its closure, and the slot with it.
        let _ = std::thread::Builder::new()
            .name("tun-wg-uapi-client".into())
            .spawn(move || {
                let _slot = slot;
                let _ = handle(&device, stream);
            });
    }
}

/// A client's place among the [`MAX_CLIENTS`]; given back when dropped.
struct Slot(mpsc::SyncSender<()>);

impl Drop for Slot {
    fn drop(&mut self) {
        let _ = self.0.try_send(());
    }
}

/// A line as read: complete, too long, or cut off by the end of the stream.
enum Line {
    Complete(String),
    TooLong,
    Eof,
}

fn read_line<R: BufRead>(reader: &mut R) -> std::io::Result<Line> {
    let mut bytes = Vec::new();
    let n = std::io::Read::take(&mut *reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut bytes)?;
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
        return Ok(Line::Complete(String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(if n > MAX_LINE {
        Line::TooLong
    } else {
        Line::Eof
    })
}

/// One client: any number of requests until it closes or errs.
fn handle(device: &Device, stream: UnixStream) -> std::io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let Line::Complete(op) = read_line(&mut reader)? else {
            return Ok(());
        };
        let result = match op.as_str() {
            "get=1" => match read_line(&mut reader)? {
                Line::Complete(l) if l.is_empty() => {
                    let text = write_get(&device.get());
                    writer.write_all(text.as_bytes())?;
                    Ok(())
                }
                _ => Err(UapiError::invalid("trailing characters after get=1")),
            },
            "set=1" => read_set(&mut reader).and_then(|lines| {
                let req = parse_set(lines.iter().map(String::as_str))?;
                device.set(&req)
            }),
            // Not the protocol: wireguard-go hangs up without an answer.
            _ => return Ok(()),
        };
        let errno = match &result {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("tun-wg: configuration refused: {e}");
                e.errno
            }
        };
        writer.write_all(format!("errno={errno}\n\n").as_bytes())?;
        // After a line too long or a request cut off, the stream is out of step: end it.
        if result.is_err_and(|e| e.errno == -libc::EIO || e.errno == -libc::EPROTO) {
            return Ok(());
        }
    }
}

/// The lines of a `set=1` transaction up to the empty line that ends it.
fn read_set(reader: &mut impl BufRead) -> Result<Vec<String>, UapiError> {
    let mut lines = Vec::new();
    let mut bytes = 0;
    loop {
        match read_line(reader) {
            Ok(Line::Complete(l)) if l.is_empty() => return Ok(lines),
            Ok(Line::Complete(l)) => {
                bytes += l.len() + 1;
                if bytes > MAX_REQUEST_BYTES {
                    return Err(UapiError::io(format!(
                        "a request longer than {MAX_REQUEST_BYTES} bytes"
                    )));
                }
                lines.push(l);
            }
            Ok(Line::TooLong) => {
                return Err(UapiError::io(format!(
                    "a line longer than {MAX_LINE} bytes"
                )));
            }
            Ok(Line::Eof) => {
                return Err(UapiError::protocol(
                    "the request ended without its empty line",
                ));
            }
            Err(e) => return Err(UapiError::io(format!("reading the request: {e}"))),
        }
        if lines.len() > MAX_LINES {
            return Err(UapiError::io(format!("more than {MAX_LINES} lines")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_complete_too_long_or_cut_off() {
        let mut r = std::io::Cursor::new(b"get=1\n\nabc".to_vec());
        assert!(matches!(read_line(&mut r).unwrap(), Line::Complete(l) if l == "get=1"));
        assert!(matches!(read_line(&mut r).unwrap(), Line::Complete(l) if l.is_empty()));
        assert!(matches!(read_line(&mut r).unwrap(), Line::Eof));
        let mut long = vec![b'a'; MAX_LINE + 10];
        long.push(b'\n');
        assert!(matches!(
            read_line(&mut std::io::Cursor::new(long)).unwrap(),
            Line::TooLong
        ));
        let mut exact = vec![b'a'; MAX_LINE];
        exact.push(b'\n');
        assert!(matches!(
            read_line(&mut std::io::Cursor::new(exact)).unwrap(),
            Line::Complete(_)
        ));
    }

    /// `count` lines of `len` bytes and the empty line, made as they are read; counts the bytes read.
    struct ManyLines {
        len: usize,
        count: usize,
        read: usize,
    }

    impl std::io::Read for ManyLines {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let total = (self.len + 1) * self.count + 1;
            let n = buf.len().min(total - self.read);
            for b in &mut buf[..n] {
                let in_line = self.read % (self.len + 1);
                *b = if self.read + 1 == total || in_line == self.len {
                    b'\n'
                } else {
                    b'a'
                };
                self.read += 1;
            }
            Ok(n)
        }
    }

    #[test]
    fn a_set_is_bounded_in_bytes_not_only_in_lines() {
        // Lines just under the length limit, twice the byte limit in all (well under the line limit): kept
        // whole, a million of them would be 64 GiB.
        let len = MAX_LINE - 1;
        let count = 2 * MAX_REQUEST_BYTES / len;
        assert!(count < MAX_LINES);
        let mut source = ManyLines {
            len,
            count,
            read: 0,
        };
        let result = read_set(&mut BufReader::new(&mut source));
        assert_eq!(result.map(|l| l.len()).unwrap_err().errno, -libc::EIO);
        assert!(
            source.read <= MAX_REQUEST_BYTES + 2 * MAX_LINE,
            "read {} bytes before refusing",
            source.read
        );
    }

    #[test]
    fn a_set_needs_its_empty_line() {
        let mut r = std::io::Cursor::new(b"listen_port=1\n".to_vec());
        assert_eq!(read_set(&mut r).unwrap_err().errno, -libc::EPROTO);
        let mut r = std::io::Cursor::new(b"listen_port=1\n\n".to_vec());
        assert_eq!(read_set(&mut r).unwrap(), ["listen_port=1"]);
    }
}
