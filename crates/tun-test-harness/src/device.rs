//! Devices made inside a [`NetNs`].

use std::time::{Duration, Instant};

use tun::Tun;
use tun_test_support::NetNs;

/// What a test does with devices in a [`NetNs`]: a trait, because the namespace itself belongs to
/// `tun-test-support`, which knows nothing of the facade.
pub trait NetNsTun {
    /// Builds a TUN device inside this namespace.
    fn tun(&self, builder: tun::Builder) -> Result<Tun, tun::Error>;

    /// Attaches to a device whose previous fd was just closed, retrying while the kernel still calls it busy
    /// (at most 5 s). A closed fd can outlive `close()` briefly: a child that another test thread is forking
    /// inherits every fd of the process and holds them until it execs.
    fn tun_reattach(&self, builder: tun::Builder) -> Result<Tun, tun::Error>;

    /// Brings `tun` up with `addr/prefix_len` and IPv6 off, so the only traffic on it is the test's own.
    fn address(&self, tun: &Tun, addr: std::net::IpAddr, prefix_len: u8);
}

impl NetNsTun for NetNs {
    fn tun(&self, builder: tun::Builder) -> Result<Tun, tun::Error> {
        self.run_in(|| builder.build())
    }

    fn tun_reattach(&self, builder: tun::Builder) -> Result<Tun, tun::Error> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.tun(builder.clone()) {
                Err(tun::Error::DeviceBusy { .. }) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                result => return result,
            }
        }
    }

    fn address(&self, tun: &Tun, addr: std::net::IpAddr, prefix_len: u8) {
        let dev = tun.name();
        // IPv6 router and neighbour solicitations would otherwise show up among the packets a test reads.
        let _ = self.exec(
            "sysctl",
            &["-qw", &format!("net.ipv6.conf.{dev}.disable_ipv6=1")],
        );
        tun.add_address(addr, prefix_len)
            .unwrap_or_else(|e| panic!("address {addr}/{prefix_len} on {dev}: {e}"));
        tun.set_up(true)
            .unwrap_or_else(|e| panic!("bring {dev} up: {e}"));
    }
}

/// A tokio runtime for the async tests: current-thread, or multi-thread with two workers (one per core here).
pub fn runtime(multi_thread: bool) -> tokio::runtime::Runtime {
    let mut builder = if multi_thread {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(2);
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    builder.enable_all().build().expect("a tokio runtime")
}
