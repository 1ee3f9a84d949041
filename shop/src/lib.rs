//! The web shop: catalogue, accounts, cart, and a checkout that asks the risk sidecar
//! before it captures a payment.

pub mod accounts;
pub mod catalogue;
pub mod checkout;
pub mod db;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod metrics;
pub mod routes;
pub mod session;
pub mod settings;
pub mod startup;
pub mod telemetry;
