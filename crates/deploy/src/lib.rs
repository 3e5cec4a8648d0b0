//! Vigia's runtimes: how the stack's services are stopped and started (DESIGN.md, the
//! `Runtime` port). `none` lives in vigia-core; `local` (processes with pid files) here.

pub mod runtime;
