//! Everything Vigia knows about Odoo and the Costa Rica e-invoicing module (DOMAIN.md): the
//! filestore's layout, read and written without following a link; what a database says about
//! itself (filestore references, modules, series); the e-invoice documents a restore must not
//! lose; addon hashes; neutralization of a copy; Odoo's backup zip; and the one verdict on
//! `/web/health`.

pub mod addons;
pub mod addons_listing;
pub mod company_keys;
pub mod einvoice;
pub mod filestore;
pub mod health;
pub mod log;
pub mod modules;
pub mod neutralize;
pub mod queues;
pub mod schema;
pub mod zip;

pub use neutralize::{Neutralize, NeutralizeReport};
pub use zip::{OdooZipInfo, copy_restricted};
