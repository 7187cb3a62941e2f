//! The timer thread: every peer's protocol timers (handshake retries, rekeying, keepalives, session
//! expiry), the cookie limiter's reset and the MTU the data path pads to.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use boringtun::noise::TunnResult;

use crate::counters::Counters;
use crate::device::Device;

/// How often the timers run: boringtun wants 100-250 ms; its own device ticks every 250 ms.
pub(crate) const TICK: Duration = Duration::from_millis(100);

/// Runs until the endpoint stops.
pub(crate) fn run(device: &Device) {
    let mut buf = vec![0u8; 2048];
    let mut last_second = Instant::now();
    let c = &device.counters;
    while !device.stopping.load(Ordering::Relaxed) {
        std::thread::sleep(TICK);
        let routing = device.routing();
        let udp = device.udp();
        for peer in &routing.peers {
            let mut state = peer.state.lock();
            let endpoint = state.endpoint;
            let Some(tunn) = state.tunn.as_mut() else {
                continue;
            };
            if let TunnResult::WriteToNetwork(packet) = tunn.update_timers(&mut buf) {
                let len = packet.len();
                if let Some(to) = endpoint {
                    state.tx_bytes += len as u64;
                    let failed = udp.send(to, &buf[..len], len) as u64;
                    Counters::add(&c.udp_datagrams_sent, 1 - failed);
                    Counters::add(&c.udp_send_errors, failed);
                }
            }
        }
        if last_second.elapsed() >= Duration::from_secs(1) {
            last_second = Instant::now();
            if let Some(identity) = &routing.identity {
                identity.rate_limiter.reset_count();
            }
            if let Ok(mtu) = device.tun.mtu() {
                device.mtu.store(mtu, Ordering::Relaxed);
            }
        }
    }
}
