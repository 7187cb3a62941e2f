//! Building, closing and dropping an `AsyncTun` returns every byte it allocated, the reactor's registration
//! included. Alone in its binary, because the allocation counter replaces the global allocator (it counts
//! per thread).

use std::time::Duration;

use tun::Builder;
use tun_system_tests::{NetNs, NetNsTun, runtime};

/// Builds (attaches a queue of the persistent device `name`), closes and drops an `AsyncTun` `cycles` times
/// on a current-thread runtime driven by the calling thread.
fn cycles(rt: &tokio::runtime::Runtime, name: &str, cycles: usize) {
    for _ in 0..cycles {
        rt.block_on(async {
            let tun = Builder::new()
                .name(name)
                .monitor(false)
                .build_async()
                .unwrap();
            tun.close().unwrap();
            drop(tun);
        });
    }
    // The reactor frees a released registration on its next turn: give it a few.
    for _ in 0..3 {
        rt.block_on(async { tokio::time::sleep(Duration::from_millis(1)).await });
    }
}

#[test]
#[ignore = "privileged: run by cargo xtask test as root"]
fn two_thousand_async_build_close_drop_cycles_leak_nothing() {
    const CYCLES: usize = 2000;
    let ns = NetNs::new();
    // A persistent device: each cycle attaches a queue and releases it, without the kernel's cost of
    // creating and removing a device.
    drop(
        ns.tun(Builder::new().name("tak0").persist(true).monitor(false))
            .unwrap(),
    );
    // Everything on one thread inside the namespace: the runtime, its reactor and the devices, so that every
    // allocation and its release are counted alike.
    let info = ns.run_in(|| {
        let rt = runtime(false);
        // Warm-up: the reactor's and the runtime's lazily grown tables are not a leak.
        cycles(&rt, "tak0", 50);
        let info = allocation_counter::measure(|| cycles(&rt, "tak0", CYCLES));
        drop(rt);
        info
    });
    ns.ip(&["link", "del", "tak0"]);
    eprintln!(
        "{CYCLES} cycles: {} allocations, {} bytes still allocated",
        info.count_total, info.bytes_current
    );
    // A constant allowance for one-off growth; a registration kept per cycle is about 250 bytes, 500 KB here.
    assert!(
        info.bytes_current < 16 * 1024,
        "{} bytes still allocated after {CYCLES} cycles",
        info.bytes_current
    );
}
