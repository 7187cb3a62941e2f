//! The one error type of the offload engine.

/// Why a packet or a batch could not be split or coalesced.
///
/// Every variant names what was wrong; none of them means data was silently dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OffloadError {
    /// A buffer is shorter than the structure it must hold.
    #[error("{what} too short: need {need} bytes, have {have}")]
    TooShort {
        /// What was being read or written.
        what: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// A packet's headers are inconsistent or not what its virtio header says.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// The virtio header carries a GSO type this engine does not handle.
    #[error("unsupported GSO type {0:#04x}")]
    UnsupportedGsoType(u8),
    /// A caller's buffer cannot hold the packet destined for it.
    #[error("buffer {index} too small: need {need} bytes, have {have}")]
    BufferTooSmall {
        /// Index of the buffer in the caller's batch.
        index: usize,
        /// Bytes needed (including the offset).
        need: usize,
        /// Bytes available.
        have: usize,
    },
    /// The caller's arguments disagree with each other (for example an offset that leaves no room for the
    /// virtio-net header).
    #[error("invalid arguments: {0}")]
    InvalidArgument(&'static str),
    /// A super-packet splits into more segments than the caller gave buffers for. Nothing was written: retry
    /// with more buffers, or split it in batches with [`SplitState`](crate::SplitState).
    #[error("{segments} segments do not fit in {buffers} buffers")]
    TooFewBuffers {
        /// Segments the packet splits into.
        segments: usize,
        /// Buffers (and sizes) the caller gave.
        buffers: usize,
    },
}
