//! Integration tests: the real server on a random port, real Redis under a fresh key
//! prefix per test (or the in-memory store), over HTTP. One binary, one module per area.

mod admin;
mod cluster;
mod contract_errors;
mod decide;
mod decision_log;
mod degraded;
mod deploy;
mod feedback;
mod helpers;
mod label_counters;
mod model;
mod openapi;
mod process;
mod security;
