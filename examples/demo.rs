//! Placeholder demo; replaced once the PDU codec lands.
fn main() {}
