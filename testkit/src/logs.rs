//! Everything a test process logs, kept for searching (a card number must never be in
//! it). The first call installs a JSON subscriber at `debug` for the whole process.

use std::io::Write;
use std::sync::{Arc, LazyLock, Mutex};

static BUFFER: LazyLock<Arc<Mutex<Vec<u8>>>> = LazyLock::new(|| {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&buffer);
    let _ = tracing_subscriber::fmt()
        .with_env_filter("debug")
        .with_writer(move || Writer(Arc::clone(&sink)))
        .json()
        .try_init();
    buffer
});

struct Writer(Arc<Mutex<Vec<u8>>>);

impl Write for Writer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Starts capturing (idempotent): call before the code under test logs.
pub fn capture() {
    LazyLock::force(&BUFFER);
}

/// What was logged so far, by every test of this process.
pub fn captured() -> String {
    String::from_utf8_lossy(&BUFFER.lock().unwrap_or_else(|poisoned| poisoned.into_inner())).into_owned()
}
