//! The decisions' own writes, sent behind the answer (a single Redis only). Each waits
//! here for the worker's next velocity pipeline and rides in it, ahead of that
//! decision's script: no request of its own, so neither Redis nor the worker wakes up
//! for it. When no decision follows within `WINDOW`, a flusher sends what waits as one
//! pipeline. Measured at 2,000 decisions/s paced, a write of its own per decision cost
//! each side a wake-up (the `+OK` reply woke an idle worker).
//!
//! A retry or a `GET` that comes meanwhile finds the reservation and polls until the
//! decision is there (`DecisionService::await_decision`): one or two more trips.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fred::clients::Pool;
use fred::types::Value;

use super::StoreError;
use super::nodes::{Cmd, Nodes};

/// How long a write waits for a pipeline to ride in before it is sent on its own.
pub const WINDOW: Duration = Duration::from_millis(1);
/// How long a flushed batch may take (nothing waits on it).
const FLUSH_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Default)]
struct Queue {
    /// `SET key record PX ttl` arguments, in the order the decisions were made.
    writes: Vec<Vec<Value>>,
    /// A flusher is sleeping on this queue.
    flusher: bool,
}

#[derive(Clone, Default)]
pub struct Behind {
    queue: Arc<Mutex<Queue>>,
}

impl Behind {
    /// Queues a decision's write; starts a flusher for `pool` unless one is waiting.
    pub fn push(&self, pool: &Pool, key: Value, record: Value, ttl_ms: i64) {
        let start_flusher = {
            let mut q = self.queue.lock().expect("behind queue");
            q.writes.push(vec![key, record, "PX".into(), ttl_ms.into()]);
            !std::mem::replace(&mut q.flusher, true)
        };
        if start_flusher {
            let this = self.clone();
            let pool = pool.clone();
            tokio::spawn(async move {
                tokio::time::sleep(WINDOW).await;
                this.flush(pool).await;
            });
        }
    }

    /// What waits, as `SET` commands for a pipeline that is about to go.
    pub fn take(&self, nodes: &Nodes) -> Vec<Cmd> {
        let writes = std::mem::take(&mut self.queue.lock().expect("behind queue").writes);
        writes.into_iter().map(|args| nodes.cmd("SET", b"", args)).collect()
    }

    async fn flush(&self, pool: Pool) {
        let writes = {
            let mut q = self.queue.lock().expect("behind queue");
            q.flusher = false;
            std::mem::take(&mut q.writes)
        };
        if writes.is_empty() {
            return;
        }
        let n = writes.len();
        crate::metrics::redis_round_trip("finish_decision");
        let nodes = Nodes::Single(pool);
        let cmds = writes.into_iter().map(|args| nodes.cmd("SET", b"", args)).collect();
        if let Err(e) = nodes.send(cmds, FLUSH_TIMEOUT).await {
            lost(n, &e);
        }
    }
}

/// Writes given up: their retries find the reservation (503) until it expires.
pub fn lost(n: usize, e: &StoreError) {
    for _ in 0..n {
        crate::metrics::store_error("finish_decision", e.as_label());
    }
    tracing::warn!(error = %e, decisions = n, "Decisions were not stored; their retries find the reservation until it expires.");
}
