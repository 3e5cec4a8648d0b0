//! An Odoo zip's `dump.sql` on its way to psql: every meta-command but pg_dump's own
//! `\restrict` pair must be refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigia_odoo::copy_restricted;

fuzz_target!(|data: &[u8]| {
    let _ = copy_restricted(&mut &data[..], &mut std::io::sink(), "K1");
});
