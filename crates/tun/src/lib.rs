//! Fast Linux TUN devices.
