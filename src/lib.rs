//! Vigia for Rust programs: the library crates behind the `vigia` command, re-exported.
//!
//! ```
//! let source = vigia::core::ConfigSource::from_text("[odoo]\ndatabase = \"odoo\"\n", None)?;
//! assert_eq!(source.load(None)?.odoo.database, "odoo");
//! # Ok::<(), vigia::core::Error>(())
//! ```

pub use vigia_backup as backup;
pub use vigia_core as core;
pub use vigia_odoo as odoo;
pub use vigia_pg as pg;
pub use vigia_restore as restore;
pub use vigia_runtime as runtime;
