//! The ports: what the domain needs from the outside world, as object-safe traits.
//! Real implementations live in the domain crates; test doubles beside the tests.

pub mod check;
pub mod clock;
pub mod database;
pub mod notifier;
pub mod progress;
pub mod runtime;
pub mod store;
