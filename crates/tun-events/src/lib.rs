//! Link monitoring for TUN devices.
