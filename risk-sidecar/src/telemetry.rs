//! Tracing: JSON lines in production, readable text in a terminal, filtered by RUST_LOG.

pub use servicekit::init_logs as init;
