//! Test doubles of the ports (feature `testing`, for the unit tests of the crates above;
//! integration tests use the real servers): an in-memory store, a fault-injecting wrapper
//! around any store, and a runtime that records what it was asked. The fixed clock is
//! `ports::clock::FixedClock`.

mod faulty_store;
mod memory_store;
mod recording_runtime;

pub use faulty_store::FaultyStore;
pub use memory_store::MemoryStore;
pub use recording_runtime::RecordingRuntime;
