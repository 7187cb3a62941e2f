//! Offload settings: the batch size that follows from them.

/// Packets per batch with offloads: one 64 KiB TSO super-packet of 1448-byte segments splits into 46, so 128
/// leaves room for small-MSS flows and UDP trains, as wireguard-go's `IdealBatchSize`.
pub(crate) const BATCH_SIZE: usize = 128;
