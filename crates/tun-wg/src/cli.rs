//! The command line: `tun-wg [-f|--foreground] [--no-offload] [--config FILE] INTERFACE`.

use std::ffi::OsString;
use std::path::PathBuf;

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    /// The TUN device to create.
    pub(crate) interface: String,
    /// `--no-offload`: a device without TSO/USO/GRO.
    pub(crate) no_offload: bool,
    /// `--config FILE`.
    pub(crate) config: Option<PathBuf>,
}

/// The usage line.
pub(crate) const USAGE: &str =
    "usage: tun-wg [-f|--foreground] [--no-offload] [--config FILE] INTERFACE";

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Options, String> {
    let mut interface = None;
    let mut no_offload = false;
    let mut config = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        match arg.to_str() {
            // Always in the foreground: accepted for wg-quick's WG_QUICK_USERSPACE_IMPLEMENTATION habits.
            Some("-f" | "--foreground") => {}
            Some("--no-offload") => no_offload = true,
            Some("--config") => {
                let file = args.next().ok_or("--config needs a FILE")?;
                config = Some(PathBuf::from(file));
            }
            Some(s) if s.starts_with("--config=") => config = Some(PathBuf::from(&s[9..])),
            Some(s) if s.starts_with('-') && s.len() > 1 => {
                return Err(format!("unknown option `{s}`"));
            }
            Some(name) if interface.is_none() => interface = Some(name.to_owned()),
            Some(name) => return Err(format!("one INTERFACE only (`{name}` is a second one)")),
            None => return Err("arguments must be UTF-8".to_owned()),
        }
    }
    let interface = interface.ok_or("INTERFACE is missing")?;
    if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ', '%']) {
        return Err(format!(
            "`{interface}` is not an interface name (1-15 characters, no '/', ' ' or '%')"
        ));
    }
    Ok(Options {
        interface,
        no_offload,
        config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Options, String> {
        parse(list.iter().map(OsString::from))
    }

    #[test]
    fn the_contract_forms_parse() {
        let o = args(&["-f", "wg0"]).unwrap();
        assert_eq!(
            (o.interface.as_str(), o.no_offload, o.config),
            ("wg0", false, None)
        );
        let o = args(&[
            "--foreground",
            "--no-offload",
            "--config",
            "/etc/wg.conf",
            "wg1",
        ])
        .unwrap();
        assert!(o.no_offload);
        assert_eq!(o.config, Some(PathBuf::from("/etc/wg.conf")));
        assert_eq!(
            args(&["wg2", "--config=/x"]).unwrap().config,
            Some(PathBuf::from("/x"))
        );
    }

    #[test]
    fn bad_command_lines_are_errors() {
        assert!(args(&[]).is_err());
        assert!(args(&["-d", "wg0"]).is_err());
        assert!(args(&["wg0", "wg1"]).is_err());
        assert!(args(&["--config"]).is_err());
        assert!(args(&["a-name-far-too-long"]).is_err());
        assert!(args(&["wg%d"]).is_err());
    }
}
