//! The shop's API and pages over HTTP, against a fresh PostgreSQL database per test and
//! a real risk-sidecar process.

mod accounts;
mod browser;
mod cart;
mod checkout;
mod deploy;
mod helpers;
mod openapi;
mod operations;
mod pages;
mod reports;
mod security;
