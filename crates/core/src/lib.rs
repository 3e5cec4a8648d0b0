//! Vigia's core: the config, the error type with its stable kinds and exit codes, the JSON
//! envelope, and the ports (traits) that the domain crates implement.
//!
//! ```
//! let source = vigia_core::ConfigSource::from_text("[odoo]\ndatabase = \"odoo\"\n", None)?;
//! let config = source.load(None)?;
//! assert_eq!(config.odoo.database, "odoo");
//! assert_eq!(config.timezone, "America/Costa_Rica");
//! # Ok::<(), vigia_core::Error>(())
//! ```

mod cancel;
pub mod config;
pub mod disk;
mod envelope;
mod error;
pub mod failpoint;
mod init;
pub mod meminfo;
pub mod ports;
pub mod process;
pub mod signals;
pub mod systemd;
pub mod task;
#[cfg(feature = "testing")]
pub mod testing;

pub use cancel::CancelToken;
pub use config::{Config, ConfigSource};
pub use envelope::{Envelope, EnvelopeError, Outcome};
pub use error::{Error, ErrorContext, ErrorKind, Result, error_chain};
pub use init::{InitReport, InitSettings, init, init_with};

/// The version of the vigia crates, for reports and the FFI.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// `N` bytes from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf
}
