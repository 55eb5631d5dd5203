//! Storage of countersign: the ports (split by capability), the embedded in-memory store, and the
//! contract every store must pass (feature `contract`).

pub mod memory;
pub mod ports;

#[cfg(feature = "contract")]
pub mod contract;

pub use memory::MemoryStore;
pub use ports::*;
