//! The `tun` crate's examples as a user runs them: built by cargo as `cargo run -p tun --example NAME`
//! builds them, then started as programs (in a namespace of the test's, with [`NetNs::command`]).
//!
//! The examples belong to the `tun` package, whose dev-dependencies cannot include the test support (which
//! depends on `tun`), so their tests live here and ask cargo for the binary.
//!
//! [`NetNs::command`]: crate::NetNs::command

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

/// The example `name` of the `tun` crate, built by the cargo that runs these tests (once per test process)
/// from this very source tree. Panics with cargo's message when it does not build.
pub fn example(name: &str) -> PathBuf {
    static BUILT: Mutex<BTreeMap<String, PathBuf>> = Mutex::new(BTreeMap::new());
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = built.get(name) {
        return path.clone();
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace holds the system tests");
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "tun", "--example", name])
        .arg("--message-format=json")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("run cargo: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo build --example {name}: {}",
        out.status
    );
    let path = executable(&stdout, name)
        .unwrap_or_else(|| panic!("cargo built no example {name}:\n{stdout}"));
    built.insert(name.to_owned(), path.clone());
    path
}

/// The path of the example `name` in cargo's `--message-format=json` output.
fn executable(messages: &str, name: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| {
            m["target"]["kind"]
                .as_array()
                .is_some_and(|k| k.iter().any(|k| k == "example"))
        })
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

pub use tun_test_support::process::Running;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_is_found_among_cargos_messages() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","target":{"kind":["lib"],"name":"tun"},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","target":{"kind":["example"],"name":"forward"},"#,
            r#""executable":"/t/debug/examples/forward"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(
            executable(messages, "forward"),
            Some(PathBuf::from("/t/debug/examples/forward"))
        );
        assert_eq!(executable(messages, "events"), None);
        assert_eq!(executable(messages, "tun"), None);
    }
}
