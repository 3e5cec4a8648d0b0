//! Vigia's runtimes: how the stack's services are stopped, started and watched (DESIGN.md,
//! the `Runtime` port): `none` (managed elsewhere) and `local` (processes with pid files),
//! and `from_config()`, which picks the one a config names.

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
use vigia_core::{Config, Error, Result};

pub use local::LocalRuntime;
pub use none::NoRuntime;

/// `[runtime] kind`: `none` or `local`.
pub fn from_config(config: &Config) -> Result<Arc<dyn Runtime>> {
    match config.runtime.kind {
        RuntimeKind::None => Ok(Arc::new(NoRuntime)),
        RuntimeKind::Local => Ok(Arc::new(LocalRuntime::from_config(config)?)),
        RuntimeKind::Compose => Err(Error::config(
            "runtime kind \"compose\" cannot be driven by this version of vigia (no Docker \
             engine to test it against): set kind = \"none\" and stop Odoo yourself, or \
             \"local\"",
        )
        .with_key("runtime.kind")),
    }
}
