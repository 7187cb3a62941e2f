//! Shared by the integration tests, the fuzz targets and the benches (which include this directory by
//! `#[path]`): packet builders, an independent checksum, the output oracle and the fuzz checks. The unit
//! tests include `packets` and `reference` alone (`src/lib.rs`).
// Each test binary uses a different part of the support code.
#![allow(dead_code)]

pub(crate) mod batch;
pub(crate) mod fuzz;
pub(crate) mod oracle;
pub(crate) mod packets;
pub(crate) mod reference;
