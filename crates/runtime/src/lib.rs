//! Vigia's runtimes: how the stack's services are stopped, started and watched (DESIGN.md,
//! the `Runtime` port): `none` (managed elsewhere), `local` (processes with pid files) and
//! `compose` (docker compose on a container engine), and `from_config()`, which picks the
//! one a config names.

pub mod compose;
mod local;
mod none;
pub mod releases;
pub mod shell;
pub mod silence;
pub mod stack_lock;

use std::sync::Arc;

use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::Runtime;
use vigia_core::{Config, Result};

pub use compose::ComposeRuntime;
pub use local::LocalRuntime;
pub use none::NoRuntime;

/// `[runtime] kind`: `none`, `local` or `compose`.
pub fn from_config(config: &Config) -> Result<Arc<dyn Runtime>> {
    match config.runtime.kind {
        RuntimeKind::None => Ok(Arc::new(NoRuntime)),
        RuntimeKind::Local => Ok(Arc::new(LocalRuntime::from_config(config)?)),
        RuntimeKind::Compose => Ok(Arc::new(ComposeRuntime::from_config(config)?)),
    }
}
