//! The runtime a config names.

mod local;

use std::sync::Arc;

use vigia_core::config::RuntimeKind;
use vigia_core::ports::runtime::{NoRuntime, Runtime};
use vigia_core::{Config, Error, Result};

pub use local::LocalRuntime;

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
