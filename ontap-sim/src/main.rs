//! The `ontap-sim` binary.
fn main() {}
