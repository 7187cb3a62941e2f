//! Helpers shared by the tests that run this package's examples: the path of an example binary of this very
//! build, and a child that is killed if the test fails. Namespaces and polling come from the workspace's test
//! support.

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Child, ExitStatus};
use std::time::Duration;

pub use tun_test_support::{NetNs, wait_until};

/// `target/<profile>/examples/<name>`, beside the `deps/` directory holding this test binary.
///
/// `cargo test -p tun` builds the package's examples there, so this is the example of this very build.
pub fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    profile_dir.join("examples").join(name)
}

/// A running example, killed if the test fails before it exits on its own.
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
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}
