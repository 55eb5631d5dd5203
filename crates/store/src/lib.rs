//! Storage of countersign: the ports (split by capability), the embedded in-memory store, and the
//! contract every store must pass (feature `contract`).

pub mod ports;

pub use ports::*;
