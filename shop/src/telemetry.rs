//! Tracing: JSON lines in production, readable text in a terminal, filtered by RUST_LOG.

pub use servicekit::init_logs as init;

/// Runs CPU-heavy work (argon2) on the blocking pool, inside the caller's span.
pub async fn spawn_blocking_with_tracing<F, R>(f: F) -> Result<R, tokio::task::JoinError>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f)).await
}
