//! What the compose runtime reads and writes without an engine: `docker compose ps`'s output
//! in both of its shapes (ps.rs), and the one line of the compose file's `.env` that names
//! the release (env_file.rs). The runtime that drives the engine builds on these.

pub mod env_file;
pub mod ps;
