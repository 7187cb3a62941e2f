//! A program a test runs: killed if the test fails before it exits, stopped with SIGTERM when it is done.

use std::io::Read;
use std::process::{Child, ExitStatus};
use std::time::Duration;

use crate::signal::{self, Signal};
use crate::wait_until;

/// A running child process, killed and reaped on drop if it has not exited by then.
#[derive(Debug)]
pub struct Running(pub Child);

impl Running {
    /// The exit status once the child has exited, or `None` if it is still running after `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let mut status = None;
        wait_until(within, || {
            status = self.0.try_wait().expect("wait");
            status.is_some()
        });
        status
    }

    /// Stops the child with SIGTERM and returns its exit status and what it printed on its piped stdout and
    /// stderr (empty where not piped, or taken by the test). Panics when it is still running after `within`.
    pub fn terminate(mut self, within: Duration) -> (ExitStatus, String, String) {
        signal::send(self.0.id(), Signal::Terminate).expect("SIGTERM");
        let status = self
            .wait_exit(within)
            .unwrap_or_else(|| panic!("no exit within {within:?} after SIGTERM"));
        let (mut stdout, mut stderr) = (String::new(), String::new());
        if let Some(out) = self.0.stdout.as_mut() {
            out.read_to_string(&mut stdout).expect("read stdout");
        }
        if let Some(err) = self.0.stderr.as_mut() {
            err.read_to_string(&mut stderr).expect("read stderr");
        }
        (status, stdout, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
