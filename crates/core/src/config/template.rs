//! The fully commented config template that `vigia init --print` prints: the schema's
//! documentation, kept honest by a test that parses it and checks that it names every key.

pub const TEMPLATE: &str = include_str!("template.toml");
