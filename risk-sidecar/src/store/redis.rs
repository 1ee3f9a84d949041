//! The velocity counters in Redis: one Lua script per entity (`velocity.lua`), and
//! the stored-decision lookup, sent as one pipeline: one round trip per decision.

use std::time::Duration;

use fred::clients::Pool;
use fred::interfaces::{ClientLike, KeysInterface, LuaInterface};
use fred::prelude::{Builder, Config, Expiration, ReconnectPolicy, SetOptions, TcpConfig};
use fred::types::{ClusterHash, CustomCommand, Value};

use super::labels::{LabelSet, SetChange, decline_changes, horizon, label_changes};
use super::{
    EntityKind, EntityStats, HOUR_MS, KEY_TTL_MS, LabelStats, LabelUpdate, Observation, Observed, StoreError,
    StoreLimits, StoreState, TransactionEntities, WINDOWS_MS,
};
use crate::settings::RedisSettings;

const VELOCITY_LUA: &str = include_str!("velocity.lua");
const STATS_LEN: usize = 19;
/// Keys per entity in a script call: ev am ln fr lb dc.
const KEYS_PER_ENTITY: usize = 6;

pub struct RedisStore {
    pool: Pool,
    /// Redis Cluster: one script call per entity, each in its own slot.
    clustered: bool,
    prefix: String,
    script_sha: String,
    limits: StoreLimits,
    timeout: Duration,
}

// === impl RedisStore ===

impl RedisStore {
    /// Connects in the background. A Redis that is down at start-up does not stop the
    /// sidecar: it decides degraded and counting starts once the connection is up.
    #[tracing::instrument(name = "Connect to Redis", skip_all)]
    pub async fn connect(url: &str, settings: &RedisSettings) -> Result<RedisStore, StoreError> {
        let mut config = Config::from_url(url)?;
        config.fail_fast = false;
        let pool = Builder::from_config(config)
            .with_connection_config(|c| {
                c.connection_timeout = settings.connect_timeout();
                c.internal_command_timeout = settings.connect_timeout();
                // A decision has a budget: never resend into a second attempt.
                c.max_command_attempts = 1;
                // fred leaves Nagle on; a pipeline is several small writes.
                c.tcp = TcpConfig {
                    nodelay: Some(true),
                    ..TcpConfig::default()
                };
            })
            .with_performance_config(|p| {
                // fred's default is no timeout at all.
                p.default_command_timeout = settings.command_timeout();
            })
            // Retry forever, every 100 ms: counting resumes by itself once Redis is back.
            .set_policy(ReconnectPolicy::new_constant(0, 100))
            .build_pool(settings.pool_size)?;
        // The connection tasks run for the life of the pool; their handle is not needed.
        let _tasks = pool.connect();
        let store = RedisStore {
            pool,
            clustered: url.starts_with("redis-cluster://") || url.starts_with("rediss-cluster://"),
            prefix: settings.key_prefix.clone(),
            // Known without asking Redis; a server that lacks it answers NOSCRIPT and gets it.
            script_sha: fred::util::sha1_hash(VELOCITY_LUA),
            limits: StoreLimits::from(settings),
            timeout: settings.command_timeout(),
        };
        // Wait on the observable state: fred's connect notification can fire before the
        // client reports itself connected, and a worker must not serve before that.
        let deadline = tokio::time::Instant::now() + settings.connect_timeout();
        while store.state() != StoreState::Connected && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if store.state() == StoreState::Connected {
            // Under the connect timeout, not the decision's: a slow Redis must not fail
            // the start. Not loaded now, it is loaded on the first NOSCRIPT.
            let options = fred::types::config::Options {
                timeout: Some(settings.connect_timeout()),
                ..Default::default()
            };
            let loaded: Result<String, _> = store.pool.next().with_options(&options).script_load(VELOCITY_LUA).await;
            match loaded {
                Ok(_) => tracing::info!("Connected to Redis."),
                Err(e) => tracing::warn!(error = %e, "Redis is slow; the script is loaded on first use."),
            }
        } else {
            tracing::warn!("Redis is not reachable; deciding without velocity until it is.");
        }
        Ok(store)
    }

    #[tracing::instrument(name = "Observe velocity", skip_all)]
    pub async fn observe(&self, o: &Observation<'_>) -> Result<Observed, StoreError> {
        match self.observe_once(o).await {
            // A restarted Redis has lost its script cache: load the script and retry once.
            Err(StoreError::Redis(e)) if e.details().contains("NOSCRIPT") => {
                let client = self.connected()?;
                let _: String = tokio::time::timeout(self.timeout, client.script_load(VELOCITY_LUA))
                    .await
                    .map_err(|_| StoreError::Timeout)??;
                self.observe_once(o).await
            }
            other => other,
        }
    }

    async fn observe_once(&self, o: &Observation<'_>) -> Result<Observed, StoreError> {
        let client = self.connected()?;
        let pipeline = client.pipeline();
        let () = pipeline.get(self.decision_key(o.transaction_id)).await?;
        let entities: Vec<_> = o.entities().collect();
        // A cluster needs each entity's keys in their own call (one slot each); a single
        // Redis takes the whole decision in one.
        let per_call = if self.clustered { 1 } else { entities.len() };
        let common = script_args(o, &self.limits);
        for group in entities.chunks(per_call) {
            let mut args: Vec<Value> = Vec::with_capacity(2 + (KEYS_PER_ENTITY + 2) * group.len() + 14);
            args.push(self.script_sha.as_str().into());
            args.push(((KEYS_PER_ENTITY * group.len()) as i64).into());
            for (kind, id, _) in group {
                let base = self.entity_key(*kind, id);
                for suffix in ["ev", "am", "ln", "fr", "lb", "dc"] {
                    args.push(format!("{base}:{suffix}").into());
                }
            }
            args.extend(common.iter().cloned());
            for (kind, _, linked) in group {
                args.push(linked.unwrap_or("").into());
                args.push(script_flags(*kind, o.labels).into());
            }
            // fred's pipeline has no evalsha, so EVALSHA goes as a custom command, routed
            // in a cluster by its first key (argument 2, after the sha and the key count).
            let () = pipeline
                .custom(
                    CustomCommand::new_static("EVALSHA", ClusterHash::Offset(2), false),
                    args,
                )
                .await?;
        }
        let replies: Vec<Value> = tokio::time::timeout(self.timeout, pipeline.all())
            .await
            .map_err(|_| StoreError::Timeout)??;
        let mut replies = replies.into_iter();
        let stored_decision = match replies.next() {
            Some(Value::Null) | None => None,
            Some(v) => Some(
                v.as_string()
                    .ok_or_else(|| StoreError::Protocol("decision is not a string".into()))?,
            ),
        };
        let mut stats = Vec::with_capacity(entities.len());
        for reply in replies {
            let Value::Array(items) = reply else {
                return Err(StoreError::Protocol("velocity script reply is not an array".into()));
            };
            for chunk in items.chunks(STATS_LEN) {
                stats.push(parse_stats(chunk, o.labels)?);
            }
        }
        if stats.len() != entities.len() {
            return Err(StoreError::Protocol(
                "velocity script reply has the wrong length".into(),
            ));
        }
        let mut observed = Observed {
            stored_decision,
            ..Observed::default()
        };
        for ((kind, _, _), stats) in entities.iter().zip(stats) {
            observed.snapshot.set(*kind, stats);
        }
        Ok(observed)
    }

    /// The label's set changes for every entity, then each set trimmed to its horizon
    /// and cap, in one pipeline (one round trip; plain commands, so it works on a
    /// cluster as on a single Redis). Not atomic: a pipeline that timed out may still
    /// land after a later label's. That label was answered 503, and sending it again
    /// (which the client does) sets the counters right.
    #[tracing::instrument(name = "Apply label", skip_all)]
    pub async fn apply_label(&self, u: &LabelUpdate<'_>) -> Result<(), StoreError> {
        let changes = label_changes(u);
        self.change_sets(u.transaction_id, &changes).await
    }

    #[tracing::instrument(name = "Record decline", skip_all)]
    pub async fn record_decline(
        &self,
        entities: &TransactionEntities<'_>,
        transaction_id: &str,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        let changes = decline_changes(entities, at_ms);
        self.change_sets(transaction_id, &changes).await
    }

    async fn change_sets(
        &self,
        member: &str,
        changes: &[(EntityKind, &str, LabelSet, SetChange)],
    ) -> Result<(), StoreError> {
        let client = self.connected()?;
        let pipeline = client.pipeline();
        let keep_rank = -(i64::from(self.limits.max_events) + 1);
        for (kind, id, set, change) in changes {
            let key = format!("{}:{}", self.entity_key(*kind, id), set.suffix());
            let mut commands: Vec<(&'static str, Vec<Value>)> = match change {
                SetChange::Add { score } => vec![
                    ("ZADD", vec![key.clone().into(), (*score).into(), member.into()]),
                    (
                        "ZREMRANGEBYSCORE",
                        vec![key.clone().into(), "-inf".into(), horizon(*set, *score).into()],
                    ),
                ],
                SetChange::Remove => vec![("ZREM", vec![key.clone().into(), member.into()])],
            };
            commands.extend([
                ("ZREMRANGEBYRANK", vec![key.clone().into(), 0.into(), keep_rank.into()]),
                ("PEXPIRE", vec![key.into(), KEY_TTL_MS.into()]),
            ]);
            for (name, args) in commands {
                let () = pipeline
                    .custom(CustomCommand::new_static(name, ClusterHash::FirstKey, false), args)
                    .await?;
            }
        }
        let _: Vec<Value> = tokio::time::timeout(self.timeout, pipeline.all())
            .await
            .map_err(|_| StoreError::Timeout)??;
        Ok(())
    }

    #[tracing::instrument(name = "Store decision", skip_all)]
    pub async fn store_decision(&self, transaction_id: &str, json: &str) -> Result<Option<String>, StoreError> {
        let client = self.connected()?;
        let ttl = self.limits.decision_ttl.as_millis() as i64;
        // SET NX GET: stores unless present, and returns what was there, atomically.
        let previous: Option<String> = tokio::time::timeout(
            self.timeout,
            client.set(
                self.decision_key(transaction_id),
                json,
                Some(Expiration::PX(ttl)),
                Some(SetOptions::NX),
                true,
            ),
        )
        .await
        .map_err(|_| StoreError::Timeout)??;
        Ok(previous)
    }

    #[tracing::instrument(name = "Get decision", skip_all)]
    pub async fn get_decision(&self, transaction_id: &str) -> Result<Option<String>, StoreError> {
        let client = self.connected()?;
        tokio::time::timeout(self.timeout, client.get(self.decision_key(transaction_id)))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(StoreError::from)
    }

    pub fn state(&self) -> StoreState {
        if self.pool.clients().iter().all(|c| c.is_connected()) {
            StoreState::Connected
        } else {
            StoreState::Disconnected
        }
    }

    /// A connected client, or an immediate error: while Redis is down a decision must
    /// not wait out a timeout to learn what the connection state already says.
    fn connected(&self) -> Result<&fred::clients::Client, StoreError> {
        let client = self.pool.next_connected();
        if client.is_connected() {
            Ok(client)
        } else {
            Err(StoreError::Disconnected)
        }
    }

    /// How many fields an entity's amount hash holds (for the tests of its bound).
    #[cfg(test)]
    pub async fn amount_fields(&self, kind: super::EntityKind, id: &str) -> Result<u64, StoreError> {
        let key = format!("{}:am", self.entity_key(kind, id));
        let client = self.connected()?;
        Ok(client.custom(fred::cmd!("HLEN"), vec![key]).await?)
    }

    /// How many members one of an entity's sorted sets holds (tests of its bound).
    #[cfg(test)]
    pub async fn set_len(&self, kind: EntityKind, id: &str, suffix: &str) -> Result<u64, StoreError> {
        let client = self.connected()?;
        let key = format!("{}:{suffix}", self.entity_key(kind, id));
        Ok(client.custom(fred::cmd!("ZCARD"), vec![key]).await?)
    }

    /// An entity's keys share this base, and with it a hash tag: one cluster slot.
    fn entity_key(&self, kind: EntityKind, id: &str) -> String {
        format!("{}:{}:{{{id}}}", self.prefix, kind.as_str())
    }

    fn decision_key(&self, transaction_id: &str) -> String {
        format!("{}:dec:{{{transaction_id}}}", self.prefix)
    }
}

/// The script's ARGV[1..=14], numbers formatted here once (see velocity.lua's header).
fn script_args(o: &Observation<'_>, limits: &StoreLimits) -> Vec<Value> {
    let ts = o.at_ms;
    let hour = ts.div_euclid(HOUR_MS);
    let mut args: Vec<Value> = vec![
        o.transaction_id.into(),
        ts.to_string().into(),
        o.amount_ref_minor.map(|a| a.to_string()).unwrap_or_default().into(),
        format!("-{}", i64::from(limits.max_events) + 1).into(),
        format!("-{}", i64::from(limits.max_linked) + 1).into(),
        KEY_TTL_MS.to_string().into(),
    ];
    args.extend(WINDOWS_MS.iter().map(|w| Value::from(format!("({}", ts - w))));
    args.extend([
        format!("s{hour}").into(),
        format!("n{hour}").into(),
        hour.to_string().into(),
    ]);
    args
}

/// What the script does for an entity (see velocity.lua's header). A table, not built
/// per call: it is on every decision's path. The test below derives it from the
/// `EntityKind` rules, so the two cannot drift apart.
fn script_flags(kind: EntityKind, labels: bool) -> &'static str {
    match (kind, labels) {
        (EntityKind::Card | EntityKind::Customer, true) => "esfd",
        (EntityKind::Card | EntityKind::Customer, false) => "es",
        (EntityKind::Ip | EntityKind::Device, true) => "efhd",
        (EntityKind::Ip | EntityKind::Device, false) => "e",
        (EntityKind::Email, true) => "f",
        (EntityKind::Email, false) => "",
    }
}

fn parse_stats(items: &[Value], labels: bool) -> Result<EntityStats, StoreError> {
    let protocol = |what: &str| StoreError::Protocol(format!("velocity script: {what}"));
    if items.len() != STATS_LEN {
        return Err(protocol("reply has the wrong length"));
    }
    let mut n = [0i64; STATS_LEN];
    for (slot, v) in n.iter_mut().zip(items) {
        *slot = v.as_i64().ok_or_else(|| protocol("non-integer"))?;
    }
    let u = |i: usize| n[i].clamp(0, i64::from(u32::MAX)) as u32;
    Ok(EntityStats {
        counts: [u(0), u(1), u(2), u(3), u(4)],
        amount_sums: [n[5], n[6], n[7]],
        amount_n: [u(8), u(9), u(10)],
        first_seen_ms: n[11],
        linked_24h: u(12),
        already_counted: n[13] == 1,
        labels: labels.then(|| LabelStats {
            fraud: [u(14), u(15)],
            labelled_30d: u(16),
            declines: [u(17), u(18)],
        }),
    })
}

#[cfg(test)]
mod flag_tests {
    use super::*;

    #[test]
    fn the_flag_table_follows_the_entity_rules() {
        let kinds = [
            EntityKind::Card,
            EntityKind::Customer,
            EntityKind::Ip,
            EntityKind::Device,
            EntityKind::Email,
        ];
        for kind in kinds {
            for labels in [false, true] {
                let wanted = [
                    (kind.counts_events(), 'e'),
                    (kind.wants_sums(), 's'),
                    (labels, 'f'),
                    (labels && kind.wants_share(), 'h'),
                    (labels && kind.wants_declines(), 'd'),
                ];
                let derived: String = wanted.iter().filter(|(on, _)| *on).map(|(_, f)| f).collect();
                assert_eq!(script_flags(kind, labels), derived, "{kind:?}, labels {labels}");
            }
        }
    }
}
