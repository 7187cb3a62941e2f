//! Shared harness of the whole-system privileged tests.
