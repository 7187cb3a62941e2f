//! The command line of the forwarders: `tun-forward` and the benchmark's tun-rs peer (`tun-rs-forward`) take
//! the same arguments, so the benchmark drives them alike.

use std::fmt;
use std::net::IpAddr;

use tun::Layer;

/// What a forwarder was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardArgs {
    /// Network namespace (as `ip netns` names it) of device A.
    pub netns_a: String,
    /// Name of device A.
    pub name_a: String,
    /// Network namespace of device B.
    pub netns_b: String,
    /// Name of device B.
    pub name_b: String,
    /// Whether to enable the virtio-net header and TSO/USO offloads.
    pub offload: bool,
    /// Packets per batch (buffers handed to one receive call); `None` for the library's ideal size.
    pub batch: Option<usize>,
    /// Write each raw frame unchanged instead of going through a library's data path.
    pub passthrough: bool,
    /// Forward on a tokio runtime (one task per direction) with the library's async device.
    pub async_io: bool,
    /// Queues per device (multi-queue devices when more than one), each pair forwarded by its own threads.
    pub queues: usize,
    /// TUN devices (`--layer l3`, the default) or TAP devices (`--layer l2`), whose Ethernet frames are
    /// passed as they are.
    pub layer: Layer,
    /// Addresses and routes of device A; when any is given the forwarder brings the device up with them.
    pub config_a: DeviceConfig,
    /// Addresses and routes of device B.
    pub config_b: DeviceConfig,
}

/// Addresses (`--address-a 10.77.0.1/32`) and routes (`--route-a 10.77.0.2/32`) a forwarder gives one
/// device, each as address and prefix length.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceConfig {
    /// Addresses of the device.
    pub addresses: Vec<(IpAddr, u8)>,
    /// Routes through the device.
    pub routes: Vec<(IpAddr, u8)>,
}

impl DeviceConfig {
    /// True when nothing is to be configured (the caller configures the device itself).
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.routes.is_empty()
    }
}

/// `ADDRESS/PREFIX`, or a bare address with its full length (32 or 128).
fn parse_cidr(flag: &str, text: &str) -> Result<(IpAddr, u8), UsageError> {
    let bad = || UsageError::Invalid(format!("{flag} wants ADDRESS/PREFIX, got {text}"));
    let (addr, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let len = match len {
        None if addr.is_ipv4() => 32,
        None => 128,
        Some(len) => len.parse().map_err(|_| bad())?,
    };
    Ok((addr, len))
}

/// A command line that could not be understood, or a request for help (`-h`, `--help`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageError {
    /// The arguments are wrong; the message says how, followed by the usage line.
    Invalid(String),
    /// Help was asked for: print [`USAGE`] and exit successfully.
    Help,
}

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid(message) => f.write_str(message),
            Self::Help => f.write_str(USAGE),
        }
    }
}

impl std::error::Error for UsageError {}

/// The most queues per device `--queues` takes (the kernel allows 256; a thread per queue and direction).
pub const MAX_QUEUES: usize = 64;

/// The usage line of the forwarders.
pub const USAGE: &str = "usage: --netns-a NS1 --name-a tunA --netns-b NS2 --name-b tunB \
                         [--no-offload] [--batch N] [--passthrough] [--async] [--queues N] \
                         [--layer l3|l2] [--address-a|--address-b|--route-a|--route-b ADDRESS/PREFIX]...";

impl ForwardArgs {
    /// Parses the arguments after the program name.
    ///
    /// ```
    /// use tun_bench::cli::ForwardArgs;
    /// let args = ["--netns-a", "a", "--name-a", "tunA", "--netns-b", "b", "--name-b", "tunB", "--batch", "8"];
    /// let parsed = ForwardArgs::parse(args.iter().map(|s| s.to_string())).unwrap();
    /// assert_eq!(parsed.batch, Some(8));
    /// assert!(parsed.offload);
    /// ```
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, UsageError> {
        let mut netns_a = None;
        let mut name_a = None;
        let mut netns_b = None;
        let mut name_b = None;
        let mut offload = true;
        let mut batch = None;
        let mut passthrough = false;
        let mut async_io = false;
        let mut queues = 1;
        let mut layer = Layer::L3;
        let mut config_a = DeviceConfig::default();
        let mut config_b = DeviceConfig::default();
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| UsageError::Invalid(format!("{flag} needs a value\n{USAGE}")))
            };
            match flag.as_str() {
                "--netns-a" => netns_a = Some(value()?),
                "--name-a" => name_a = Some(value()?),
                "--netns-b" => netns_b = Some(value()?),
                "--name-b" => name_b = Some(value()?),
                "--no-offload" => offload = false,
                "--passthrough" => passthrough = true,
                "--async" => async_io = true,
                "-h" | "--help" => return Err(UsageError::Help),
                "--address-a" => config_a.addresses.push(parse_cidr(&flag, &value()?)?),
                "--address-b" => config_b.addresses.push(parse_cidr(&flag, &value()?)?),
                "--route-a" => config_a.routes.push(parse_cidr(&flag, &value()?)?),
                "--route-b" => config_b.routes.push(parse_cidr(&flag, &value()?)?),
                "--batch" => {
                    let text = value()?;
                    let n: usize = text
                        .parse()
                        .ok()
                        .filter(|n| (1..=1024).contains(n))
                        .ok_or_else(|| {
                            UsageError::Invalid(format!("--batch must be 1..=1024, got {text}"))
                        })?;
                    batch = Some(n);
                }
                "--layer" => {
                    layer = match value()?.as_str() {
                        "l3" => Layer::L3,
                        "l2" => Layer::L2,
                        other => {
                            return Err(UsageError::Invalid(format!(
                                "--layer must be l3 or l2, got {other}"
                            )));
                        }
                    };
                }
                "--queues" => {
                    let text = value()?;
                    queues = text
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_QUEUES).contains(n))
                        .ok_or_else(|| {
                            UsageError::Invalid(format!(
                                "--queues must be 1..={MAX_QUEUES}, got {text}"
                            ))
                        })?;
                }
                other => {
                    return Err(UsageError::Invalid(format!(
                        "unknown argument {other}\n{USAGE}"
                    )));
                }
            }
        }
        let missing = |what: &str| UsageError::Invalid(format!("{what} is required\n{USAGE}"));
        Ok(Self {
            netns_a: netns_a.ok_or_else(|| missing("--netns-a"))?,
            name_a: name_a.ok_or_else(|| missing("--name-a"))?,
            netns_b: netns_b.ok_or_else(|| missing("--netns-b"))?,
            name_b: name_b.ok_or_else(|| missing("--name-b"))?,
            offload,
            batch,
            passthrough,
            async_io,
            queues,
            layer,
            config_a,
            config_b,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<ForwardArgs, UsageError> {
        ForwardArgs::parse(args.iter().map(|s| (*s).to_owned()))
    }

    const BASE: [&str; 8] = [
        "--netns-a",
        "n1",
        "--name-a",
        "ta",
        "--netns-b",
        "n2",
        "--name-b",
        "tb",
    ];

    #[test]
    fn all_four_names_are_required() {
        assert!(parse(&BASE[..6]).is_err());
        let ok = parse(&BASE).expect("complete command line");
        assert_eq!((ok.netns_a.as_str(), ok.name_b.as_str()), ("n1", "tb"));
        assert!(ok.offload);
        assert_eq!(ok.batch, None);
        assert_eq!(ok.queues, 1);
        assert_eq!(ok.layer, Layer::L3);
    }

    #[test]
    fn the_layer_is_l3_or_l2() {
        let mut args = BASE.to_vec();
        args.extend(["--layer", "l2"]);
        assert_eq!(parse(&args).expect("valid").layer, Layer::L2);
        for bad in ["L2", "2", "tap"] {
            let mut args = BASE.to_vec();
            args.extend(["--layer", bad]);
            assert!(parse(&args).is_err(), "--layer {bad}");
        }
    }

    #[test]
    fn queues_are_read_and_bounded() {
        let mut args = BASE.to_vec();
        args.extend(["--queues", "4"]);
        assert_eq!(parse(&args).expect("valid").queues, 4);
        for bad in ["0", "65", "x"] {
            let mut args = BASE.to_vec();
            args.extend(["--queues", bad]);
            assert!(parse(&args).is_err(), "--queues {bad}");
        }
    }

    #[test]
    fn no_offload_and_batch_are_read() {
        let mut args = BASE.to_vec();
        args.extend(["--no-offload", "--batch", "1"]);
        let ok = parse(&args).expect("valid");
        assert!(!ok.offload);
        assert_eq!(ok.batch, Some(1));
        assert!(!ok.passthrough);
        args.push("--passthrough");
        assert!(parse(&args).expect("valid").passthrough);
        assert!(!parse(&args).expect("valid").async_io);
        args.push("--async");
        assert!(parse(&args).expect("valid").async_io);
    }

    #[test]
    fn addresses_and_routes_are_read_per_device() {
        let mut args = BASE.to_vec();
        args.extend([
            "--address-a",
            "10.77.0.1/32",
            "--address-a",
            "fd77::1",
            "--route-b",
            "10.77.0.0/24",
        ]);
        let ok = parse(&args).expect("valid");
        assert_eq!(
            ok.config_a.addresses,
            vec![
                ("10.77.0.1".parse().unwrap(), 32),
                ("fd77::1".parse().unwrap(), 128)
            ]
        );
        assert!(ok.config_a.routes.is_empty());
        assert_eq!(ok.config_b.routes, vec![("10.77.0.0".parse().unwrap(), 24)]);
        args.extend(["--route-a", "10.77.0.0/x"]);
        assert!(parse(&args).is_err());
    }

    #[test]
    fn help_is_a_request_not_an_error() {
        assert_eq!(parse(&["--help"]), Err(UsageError::Help));
        assert!(matches!(parse(&["--bogus"]), Err(UsageError::Invalid(_))));
    }

    #[test]
    fn batch_zero_and_flags_without_value_are_errors() {
        let mut args = BASE.to_vec();
        args.extend(["--batch", "0"]);
        assert!(parse(&args).is_err());
        assert!(parse(&["--netns-a"]).is_err());
        assert!(parse(&["--bogus"]).is_err());
        // A flag missing its value is refused as such, also after a complete command line.
        for flag in ["--batch", "--queues", "--address-a", "--name-b"] {
            let mut args = BASE.to_vec();
            args.push(flag);
            match parse(&args) {
                Err(UsageError::Invalid(message)) => assert!(
                    message.starts_with(&format!("{flag} needs a value")),
                    "{message}"
                ),
                other => panic!("{flag}: {other:?}"),
            }
        }
    }
}
