//! `[runtime] kind = "compose"`: the runtime that drives Compose (runtime.rs), how Compose
//! and the Docker CLI are called (tool.rs), what it reads and writes without an engine
//! (`ps`'s output in both its shapes, ps.rs; the `.env` line that names the release,
//! env_file.rs), and what a deploy asks of images (images.rs).

pub mod env_file;
mod images;
pub mod ps;
mod runtime;
pub mod tool;

pub use runtime::ComposeRuntime;
