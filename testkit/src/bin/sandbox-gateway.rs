//! `sandbox-gateway`: the sandbox payment gateway as a process of its own, for
//! `make run`, the browser test and the checkout benchmark.
//!
//! `SANDBOX_GATEWAY_ADDR` (default `127.0.0.1:8090`) and
//! `SANDBOX_GATEWAY_FINGERPRINT_KEY` (the key card fingerprints are made with; random
//! when unset, so fingerprints then change at every start). The shop never sees the key.

use std::net::TcpListener;
use std::process::ExitCode;

fn main() -> ExitCode {
    let addr = std::env::var("SANDBOX_GATEWAY_ADDR").unwrap_or_else(|_| "127.0.0.1:8090".to_owned());
    let key = match std::env::var("SANDBOX_GATEWAY_FINGERPRINT_KEY") {
        Ok(key) if !key.is_empty() => key.into_bytes(),
        _ => {
            eprintln!("sandbox-gateway: SANDBOX_GATEWAY_FINGERPRINT_KEY unset; fingerprints are random for this run");
            rand::random::<[u8; 32]>().to_vec()
        }
    };
    let listener = match TcpListener::bind(&addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sandbox-gateway: cannot bind {addr}: {e}");
            return ExitCode::from(64);
        }
    };
    let gateway = match testkit::gateway::SandboxGateway::serve(listener, &key, 2) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("sandbox-gateway: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("sandbox-gateway: listening on {}", gateway.url);
    let handle = gateway.handle();
    actix_web::rt::System::new().block_on(async move {
        let _ = actix_web::rt::signal::ctrl_c().await;
        handle.stop(true).await;
    });
    ExitCode::SUCCESS
}
