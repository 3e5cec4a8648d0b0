//! vigia-sandbox's integration tests, one binary: the throwaway cluster and `serve`.

mod postgres;
mod serve;
