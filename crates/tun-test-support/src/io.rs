//! Retrying what EINTR interrupted.

use std::io;

/// Runs `op` again while it fails with `Interrupted` (EINTR). Besides signal handlers, a blocking socket call
/// with a timeout fails that way when the process is stopped and continued, with no handler at all
/// (signal(7)); retrying loses nothing.
///
/// ```
/// use std::io::Read;
/// let mut data: &[u8] = b"abc";
/// let mut buf = [0u8; 3];
/// assert_eq!(tun_test_support::retry_eintr(|| data.read(&mut buf))?, 3);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn retry_eintr<T>(mut op: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match op() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupted_calls_are_retried_and_other_errors_returned_at_once() {
        let mut calls = 0;
        let result = retry_eintr(|| {
            calls += 1;
            if calls < 3 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(calls)
            }
        });
        assert_eq!(result.unwrap(), 3);
        let mut calls = 0;
        let result: io::Result<()> = retry_eintr(|| {
            calls += 1;
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        });
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(calls, 1);
    }
}
