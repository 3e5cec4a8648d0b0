//! vigia-ffi's integration tests, one binary: the committed header and the C example.

mod c_example;
mod header;
