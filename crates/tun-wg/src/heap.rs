//! The process's heap allocations, counted: the data path allocates nothing per packet or per batch once
//! warm, and the count, printed first among the counters, lets anyone check that from outside.

use std::alloc::System;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations and reallocations since the process started.
pub(crate) fn allocations() -> u64 {
    let stats = GLOBAL.stats();
    (stats.allocations + stats.reallocations) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_allocation_is_counted() {
        let before = allocations();
        let boxed = std::hint::black_box(Box::new([0u8; 64]));
        drop(boxed);
        assert!(allocations() > before);
    }
}
