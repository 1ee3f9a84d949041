//! The risk sidecar: real-time fraud decisions for the shop's payment code.

pub mod decision;
pub mod decision_log;
pub mod error;
pub mod explain;
pub mod feedback;
pub mod limiter;
pub mod metrics;
pub mod model;
pub mod replay;
pub mod routes;
pub mod settings;
pub mod startup;
pub mod store;
pub mod telemetry;
