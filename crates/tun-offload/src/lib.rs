//! The pure-Rust offload engine for Linux TUN devices with `IFF_VNET_HDR`.
//!
//! Everything the kernel's TUN offloads ask of user space, without syscalls and without `unsafe`:
//! the virtio-net header codec ([`VirtioNetHdr`]), the Internet [`checksum`], splitting TSO/USO
//! super-packets into MTU-sized packets on read, and coalescing TCP and UDP packets (GRO) on write.
#![forbid(unsafe_code)]

pub mod checksum;
mod error;
pub mod virtio;

pub use error::OffloadError;
pub use virtio::VirtioNetHdr;
