//! Binary (filled in later).
fn main() {}
