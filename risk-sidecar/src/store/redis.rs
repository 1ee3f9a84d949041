//! The velocity counters in Redis: one round trip per decision (`velocity.lua`: the
//! idempotency reservation, per entity its event appended to its journal, and every
//! entity's string as it was, which the sidecar folds and applies the event to itself),
//! and afterwards, without waiting, the decision stored and any journal folded
//! (`compact.lua`).

use std::borrow::Cow;
use std::time::Duration;

use fred::clients::Pool;
use fred::interfaces::{ClientLike, KeysInterface};
use fred::prelude::{Builder, Config, Expiration, ReconnectPolicy, SetOptions, TcpConfig};
use fred::types::Value;
use tokio::time::Instant;

use super::args::Args;
use super::journal::{self, Stored};
use super::labels::{LabelSet, SetChange, VIEW_LEN, VIEW_SLOTS, decline_changes, horizon, label_changes, read_view};
use super::nodes::{Cmd, Nodes};
use super::state;
use super::{
    EntityKind, EntityStats, KEY_TTL_MS, LabelUpdate, Observation, Observed, RESERVATION_TTL_MS, StoreError,
    StoreLimits, StoreState, TransactionEntities,
};
use crate::settings::RedisSettings;

const VELOCITY_LUA: &str = include_str!("velocity.lua");
const LABELS_LUA: &str = include_str!("labels.lua");
const COMPACT_LUA: &str = include_str!("compact.lua");
/// A counted entity of one decision: its kind, its linked member, its counters' key.
type Counted<'a> = (EntityKind, Option<&'a str>, &'a Value);

/// How long a decision's unawaited write may take.
const FINISH_TIMEOUT: Duration = Duration::from_secs(1);

/// One entity's changes to its fr, lb and dc sets (labels.lua's ARGV[4..=9]).
type SetChanges = [Option<(LabelSet, SetChange)>; 3];

/// velocity.lua's ARGV[3..=5]: after the reservation flag and record, before the entries.
const COMMON_ARGS: usize = 3;

pub struct RedisStore {
    nodes: Nodes,
    /// Redis Cluster: one script call per entity, each in its own slot.
    clustered: bool,
    prefix: String,
    script_sha: String,
    labels_sha: String,
    compact_sha: String,
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
        let clustered = url.starts_with("redis-cluster://") || url.starts_with("rediss-cluster://");
        let connect_timeout = settings.connect_timeout();
        let command_timeout = settings.command_timeout();
        let pool_size = settings.pool_size;
        let make_pool = move |config: Config| -> Result<Pool, StoreError> {
            let pool = Builder::from_config(config)
                .with_connection_config(|c| {
                    c.connection_timeout = connect_timeout;
                    c.internal_command_timeout = connect_timeout;
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
                    p.default_command_timeout = command_timeout;
                })
                // Retry forever, every 100 ms: counting resumes by itself once Redis is back.
                .set_policy(ReconnectPolicy::new_constant(0, 100))
                .build_pool(pool_size)?;
            // The connection tasks run for the life of the pool; their handle is not needed.
            let _tasks = pool.connect();
            Ok(pool)
        };
        // A cluster's nodes each get a pool of their own (nodes.rs says why).
        let nodes = if clustered {
            Nodes::cluster(config, make_pool)?
        } else {
            Nodes::Single(make_pool(config)?)
        };
        let store = RedisStore {
            nodes,
            clustered,
            prefix: settings.key_prefix.clone(),
            // Known without asking Redis; a server that lacks it answers NOSCRIPT and gets it.
            script_sha: fred::util::sha1_hash(VELOCITY_LUA),
            labels_sha: fred::util::sha1_hash(LABELS_LUA),
            compact_sha: fred::util::sha1_hash(COMPACT_LUA),
            limits: StoreLimits::from(settings),
            timeout: settings.command_timeout(),
        };
        // Wait on the observable state: fred's connect notification can fire before the
        // client reports itself connected, and a worker must not serve before that.
        let deadline = tokio::time::Instant::now() + settings.connect_timeout();
        while store.state() != StoreState::Connected && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
            // A cluster's slot table, as soon as a node answers.
            store.nodes.refresh().await;
        }
        if store.state() == StoreState::Connected {
            // Not loaded now (Redis slow), it is loaded on the first NOSCRIPT.
            let load_both = async {
                store.nodes.script_load(VELOCITY_LUA).await?;
                store.nodes.script_load(COMPACT_LUA).await?;
                store.nodes.script_load(LABELS_LUA).await
            };
            let loaded = tokio::time::timeout(settings.connect_timeout(), load_both)
                .await
                .unwrap_or(Err(StoreError::Timeout));
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
        let own = Instant::now() + self.timeout;
        let deadline = o.deadline.map_or(own, |d| d.min(own));
        // Boxed: the pipeline's future is kilobytes, and inline it was copied with the
        // decision's each time that moved.
        match Box::pin(self.observe_once(o, deadline)).await {
            // A restarted Redis has lost its script cache: load the script and retry once.
            Err(StoreError::Redis(e)) if e.details().contains("NOSCRIPT") => {
                Box::pin(self.load(VELOCITY_LUA, deadline)).await?;
                Box::pin(self.observe_once(o, deadline)).await
            }
            other => other,
        }
    }

    async fn load(&self, script: &str, deadline: Instant) -> Result<(), StoreError> {
        tokio::time::timeout_at(deadline, self.nodes.script_load(script))
            .await
            .map_err(|_| StoreError::Timeout)?
    }

    async fn observe_once(&self, o: &Observation<'_>, deadline: Instant) -> Result<Observed, StoreError> {
        let entities: Vec<_> = o.entities().collect();
        // Each key made once, all in one buffer, shared by the calls as slices of it.
        let mut key_buf = Args::with_capacity(entities.len(), 64 * entities.len());
        for (kind, id, _) in &entities {
            self.counters_key_into(&mut key_buf, *kind, id);
        }
        let keys = key_buf.into_values();
        let counted: Vec<Counted<'_>> = entities
            .iter()
            .zip(&keys)
            .filter(|((kind, _, _), _)| kind.counts_events())
            .map(|((kind, _, linked), key)| (*kind, *linked, key))
            .collect();
        let read_only: Vec<&Value> = entities
            .iter()
            .zip(&keys)
            .filter(|((kind, _, _), _)| !kind.counts_events())
            .map(|(_, key)| key)
            .collect();
        let common = Common::new(o);
        let mut cmds: Vec<Cmd> = Vec::with_capacity(keys.len() + 1);
        // A single Redis takes the whole decision in one call: the reservation, the
        // counting, and every string as it was (one command, so one write: fred writes
        // each command of a pipeline on its own). A cluster needs each entity's keys in
        // their own call (one slot each), the reservation as a plain SET and a key only
        // read as a plain GET. All of it one pipeline: one round trip.
        let in_script = !self.clustered;
        let separate_reservation = o.reservation.is_some() && !in_script;
        if let (Some(record), true) = (o.reservation, separate_reservation) {
            let key = self.decision_key(o.transaction_id);
            let args = vec![
                Value::from(key.as_str()),
                record.into(),
                "PX".into(),
                RESERVATION_TTL_MS.to_string().into(),
                "NX".into(),
                "GET".into(),
            ];
            cmds.push(self.nodes.cmd("SET", key.as_bytes(), args));
        }
        let per_call = if in_script { counted.len().max(1) } else { 1 };
        // Nothing counted still makes one (empty) group: the reservation and the keys
        // only read go in its call.
        let groups: Vec<&[Counted<'_>]> = if counted.is_empty() {
            vec![&[]]
        } else {
            counted.chunks(per_call).collect()
        };
        // Per script call, how many counted entities and read-only keys it answers for.
        let mut scripts: Vec<(usize, usize)> = Vec::new();
        for (i, group) in groups.into_iter().enumerate() {
            let reserve = (in_script && i == 0).then_some(o.reservation).flatten();
            let reads = if in_script { &read_only[..] } else { &[] };
            if group.is_empty() && reserve.is_none() && reads.is_empty() {
                continue;
            }
            let call = self.script_call(&common, reserve, o.transaction_id, group, reads);
            cmds.push(self.nodes.evalsha(call));
            scripts.push((group.len(), reads.len()));
        }
        let gets = if in_script { 0 } else { read_only.len() };
        for key in read_only.iter().take(gets) {
            let mut get = self
                .nodes
                .cmd("GET", key.as_bytes().unwrap_or_default(), Vec::with_capacity(1));
            get.args.push((*key).clone());
            cmds.push(get);
        }
        crate::metrics::redis_round_trip("observe");
        let replies = self.nodes.send(cmds, deadline).await?;
        if replies.len() != usize::from(separate_reservation) + scripts.len() + gets {
            return Err(StoreError::Protocol(
                "velocity pipeline reply has the wrong length".into(),
            ));
        }
        let mut replies = replies.into_iter();
        let mut observed = Observed::default();
        if separate_reservation {
            // Our own reservation: a first try whose script failed (NOSCRIPT on a node
            // that restarted empty) set it; this try holds it.
            observed.stored_decision = record_of(replies.next())?.filter(|r| Some(r.as_str()) != o.reservation);
        }
        // Per counted entity its string before this event; then each read-only key's.
        let mut before: Vec<Value> = Vec::with_capacity(counted.len());
        let mut read: Vec<Value> = Vec::with_capacity(read_only.len());
        for (n_counted, reads) in scripts {
            let Some(Value::Array(items)) = replies.next() else {
                return Err(StoreError::Protocol("velocity script reply is not an array".into()));
            };
            let whole = items.len() == 1 + n_counted + reads;
            let mut items = items.into_iter();
            let first = record_of(items.next())?;
            if first.is_some() {
                // The reservation found a record: a retry, nothing counted.
                observed.stored_decision = first;
                return Ok(observed);
            }
            if !whole {
                return Err(StoreError::Protocol(
                    "velocity script reply has the wrong length".into(),
                ));
            }
            before.extend(items.by_ref().take(n_counted));
            read.extend(items);
        }
        read.extend(replies);
        if before.len() != counted.len() || read.len() != read_only.len() {
            return Err(StoreError::Protocol(
                "velocity script reply has the wrong length".into(),
            ));
        }
        let tx_hash = common.tx_hash;
        let (mut before, mut read) = (before.into_iter(), read.into_iter());
        let mut compactions = Vec::new();
        for ((kind, _, linked), key) in entities.iter().zip(&keys) {
            let layout = state::Layout::of(*kind, self.limits.max_linked as usize);
            let counts = kind.counts_events();
            let reply = if counts { before.next() } else { read.next() }.unwrap_or(Value::Null);
            let raw = reply.as_bytes().unwrap_or_default();
            let stored = Stored::parse(raw);
            let mut stats = EntityStats::default();
            // Borrowed from the reply unless an event changes it: no copy for a block
            // with nothing journalled after it, or a key only read.
            let counters: Cow<'_, [u8]> = if counts {
                let mut counters = stored.fold(&layout);
                let event = event(o, tx_hash, *linked);
                // The ring already holds the transaction: a retry, as the fold skips it.
                let dup = state::seen(&counters, tx_hash);
                if !dup {
                    state::record(counters.to_mut(), &layout, &event);
                }
                stats = EntityStats {
                    already_counted: dup,
                    ..state::read(&counters, &layout, o.at_ms)
                };
                // An unreadable string was folded as new: its whole is replaced.
                if journal::compacts_after(stored.entry_count()) || !stored.valid {
                    compactions.push(self.compaction(key, &stored, raw.len(), &counters, &layout));
                }
                counters
            } else {
                Cow::Borrowed(stored.block.filter(|_| stored.valid).unwrap_or_default())
            };
            if o.labels {
                let view = if layout.holds(&counters) {
                    &counters[layout.labels_at()..]
                } else {
                    &[][..]
                };
                stats.labels = Some(read_view(view, *kind, o.at_ms));
            }
            observed.snapshot.set(*kind, stats);
        }
        if !compactions.is_empty() {
            self.compact(compactions);
        }
        Ok(observed)
    }

    /// compact.lua's call folding what this decision read of one entity, and its own
    /// entry, into the entity's block.
    fn compaction(
        &self,
        key: &Value,
        stored: &Stored<'_>,
        read: usize,
        counters: &[u8],
        layout: &state::Layout,
    ) -> Cmd {
        let mut args = Args::with_capacity(7, 128 + counters.len());
        args.bytes(self.compact_sha.as_bytes());
        args.int(1);
        args.bytes(key.as_bytes().unwrap_or_default());
        args.int(stored.generation);
        args.int(read + journal::ENTRY_LEN);
        args.bytes(&counters[..layout.labels_at()]);
        args.int(VIEW_LEN);
        self.nodes.evalsha(args.into_values())
    }

    /// Sent, not awaited, as the decision's record is. A fold lost (Redis slow, or
    /// restarted without the script) is made again at the journal's next multiple.
    fn compact(&self, cmds: Vec<Cmd>) {
        let nodes = self.nodes.clone();
        crate::metrics::redis_round_trip("compact");
        tokio::spawn(async move {
            let sent = nodes.send(cmds, Instant::now() + FINISH_TIMEOUT).await;
            if let Err(e) = sent {
                if matches!(&e, StoreError::Redis(r) if r.details().contains("NOSCRIPT")) {
                    // Loaded for the next one.
                    let _ = nodes.script_load(COMPACT_LUA).await;
                }
                crate::metrics::store_error("compact", e.as_label());
                tracing::debug!(error = %e, "A journal was not folded; the next multiple folds it.");
            }
        });
    }

    /// One EVALSHA's arguments, in velocity.lua's KEYS/ARGV layout.
    fn script_call(
        &self,
        common: &Common,
        reserve: Option<&str>,
        transaction_id: &str,
        group: &[Counted<'_>],
        reads: &[&Value],
    ) -> Vec<Value> {
        let reserving = reserve.is_some();
        let n_keys = usize::from(reserving) + group.len() + reads.len();
        let n_args = 2 + n_keys + 2 + COMMON_ARGS + group.len();
        let mut args = Args::with_capacity(n_args, 256 + reserve.map_or(0, str::len) + 80 * group.len());
        args.bytes(self.script_sha.as_bytes());
        args.int(n_keys);
        if reserving {
            self.decision_key_into(&mut args, transaction_id);
        }
        for (_, _, key) in group {
            args.bytes(key.as_bytes().unwrap_or_default());
        }
        for key in reads {
            args.bytes(key.as_bytes().unwrap_or_default());
        }
        args.bytes(if reserving { b"1" } else { b"0" });
        args.bytes(reserve.unwrap_or("").as_bytes());
        args.extend(&common.args);
        for (_, linked, _) in group {
            args.bytes(&journal::entry(&event(common.o, common.tx_hash, *linked)));
        }
        debug_assert_eq!(args.len(), n_args);
        args.into_values()
    }

    /// The label's set changes for every entity, then each entity's view rebuilt, one
    /// labels.lua call per entity in one pipeline (one round trip; each call is atomic
    /// in its slot, so it works on a cluster as on a single Redis). The calls are not
    /// atomic together: a pipeline that timed out may still land after a later label's.
    /// That label was answered 503, and sending it again (which the client does) sets
    /// the counters right.
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
        match self.change_sets_once(member, changes).await {
            Err(StoreError::Redis(e)) if e.details().contains("NOSCRIPT") => {
                self.load(LABELS_LUA, Instant::now() + self.timeout).await?;
                self.change_sets_once(member, changes).await
            }
            other => other,
        }
    }

    async fn change_sets_once(
        &self,
        member: &str,
        changes: &[(EntityKind, &str, LabelSet, SetChange)],
    ) -> Result<(), StoreError> {
        let mut cmds: Vec<Cmd> = Vec::new();
        // One call per entity, with the change to each of its three sets.
        let mut entities: Vec<(EntityKind, &str, SetChanges)> = Vec::new();
        for (kind, id, set, change) in changes {
            let at = match entities.iter().position(|(k, i, _)| k == kind && i == id) {
                Some(at) => at,
                None => {
                    entities.push((*kind, id, [None; 3]));
                    entities.len() - 1
                }
            };
            entities[at].2[set.index()] = Some((*set, *change));
        }
        for (kind, id, sets) in &entities {
            let base = self.entity_key(*kind, id);
            let mut args: Vec<Value> = vec![self.labels_sha.as_str().into(), 4.into()];
            for suffix in ["fr", "lb", "dc", "st"] {
                args.push(format!("{base}:{suffix}").into());
            }
            let layout = state::Layout::of(*kind, self.limits.max_linked as usize);
            args.push(member.into());
            args.push(KEY_TTL_MS.to_string().into());
            args.push(self.limits.max_events.to_string().into());
            for change in sets {
                args.push(
                    match change {
                        None => String::new(),
                        Some((_, SetChange::Remove)) => "-".to_owned(),
                        Some((_, SetChange::Add { score })) => score.to_string(),
                    }
                    .into(),
                );
            }
            for change in sets {
                args.push(
                    match change {
                        Some((set, SetChange::Add { score })) => horizon(*set, *score).to_string(),
                        _ => String::new(),
                    }
                    .into(),
                );
            }
            args.extend(VIEW_SLOTS.iter().map(|s| Value::from(s.to_string())));
            args.push(layout.labels_at().to_string().into());
            args.push(layout.size().to_string().into());
            args.push(state::VERSION.to_string().into());
            args.push(layout.links.to_string().into());
            cmds.push(self.nodes.evalsha(args));
        }
        crate::metrics::redis_round_trip("labels");
        self.nodes.send(cmds, Instant::now() + self.timeout).await?;
        Ok(())
    }

    /// Sent, not awaited: the answer does not wait on Redis a second time. With a longer
    /// timeout than the decision's commands: nothing waits on it, and a write given up
    /// leaves the reservation to answer retries with 503 until it expires.
    pub fn finish_decision(&self, transaction_id: &str, record: String) {
        let key = self.decision_key(transaction_id);
        let Ok(client) = self.nodes.client(self.nodes.slot(&key)) else {
            crate::metrics::store_error("finish_decision", StoreError::Disconnected.as_label());
            return;
        };
        let ttl = self.limits.decision_ttl.as_millis() as i64;
        crate::metrics::redis_round_trip("finish_decision");
        tokio::spawn(async move {
            let options = fred::types::config::Options {
                timeout: Some(FINISH_TIMEOUT),
                ..Default::default()
            };
            let sent: Result<(), _> = client
                .with_options(&options)
                .set(key, record, Some(Expiration::PX(ttl)), None, false)
                .await;
            if let Err(e) = sent.map_err(StoreError::Redis) {
                crate::metrics::store_error("finish_decision", e.as_label());
                tracing::warn!(error = %e, "A decision was not stored; its retries find the reservation until it expires.");
            }
        });
    }

    #[tracing::instrument(name = "Store decision", skip_all)]
    pub async fn store_decision(&self, transaction_id: &str, json: &str) -> Result<Option<String>, StoreError> {
        let key = self.decision_key(transaction_id);
        let client = self.nodes.client(self.nodes.slot(&key))?;
        let ttl = self.limits.decision_ttl.as_millis() as i64;
        crate::metrics::redis_round_trip("store_decision");
        // SET NX GET: stores unless present, and returns what was there, atomically.
        let previous: Option<String> = tokio::time::timeout(
            self.timeout,
            client.set(key, json, Some(Expiration::PX(ttl)), Some(SetOptions::NX), true),
        )
        .await
        .map_err(|_| StoreError::Timeout)??;
        Ok(previous)
    }

    #[tracing::instrument(name = "Get decision", skip_all)]
    pub async fn get_decision(&self, transaction_id: &str) -> Result<Option<String>, StoreError> {
        let key = self.decision_key(transaction_id);
        let client = self.nodes.client(self.nodes.slot(&key))?;
        crate::metrics::redis_round_trip("get_decision");
        tokio::time::timeout(self.timeout, client.get(key))
            .await
            .map_err(|_| StoreError::Timeout)?
            .map_err(StoreError::from)
    }

    pub fn state(&self) -> StoreState {
        if self.nodes.connected() {
            StoreState::Connected
        } else {
            StoreState::Disconnected
        }
    }

    /// An entity's counters, its journal folded (tests compare them with the memory
    /// store's).
    #[cfg(test)]
    pub async fn raw_counters(&self, kind: EntityKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let layout = state::Layout::of(kind, self.limits.max_linked as usize);
        Ok(self
            .stored(kind, id)
            .await?
            .map(|raw| Stored::parse(&raw).fold(&layout).into_owned()))
    }

    /// An entity's string as Redis holds it: its block and journal.
    #[cfg(test)]
    pub async fn stored(&self, kind: EntityKind, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let key = format!("{}:st", self.entity_key(kind, id));
        let client = self.nodes.client(self.nodes.slot(&key))?;
        let v: Option<fred::bytes::Bytes> = client.get(key).await?;
        Ok(v.map(|b| b.to_vec()))
    }

    /// Writes an entity's string as given (tests of what the script finds there).
    #[cfg(test)]
    pub async fn put_stored(&self, kind: EntityKind, id: &str, raw: &[u8]) -> Result<(), StoreError> {
        let key = format!("{}:st", self.entity_key(kind, id));
        let client = self.nodes.client(self.nodes.slot(&key))?;
        let value = fred::bytes::Bytes::copy_from_slice(raw);
        Ok(client.set(key, value, None, None, false).await?)
    }

    /// Folds an entity's journal now, as a decision would from `seen` (the string it
    /// read, before its own entry): whether compact.lua took it.
    #[cfg(test)]
    pub async fn compact_from(&self, kind: EntityKind, id: &str, seen: &[u8]) -> Result<bool, StoreError> {
        let layout = state::Layout::of(kind, self.limits.max_linked as usize);
        let key = Value::from(format!("{}:st", self.entity_key(kind, id)));
        // `seen` ends with the entry this fold takes as its own.
        let (before, _) = seen.split_at(seen.len() - journal::ENTRY_LEN);
        let counters = Stored::parse(seen).fold(&layout);
        let cmd = self.compaction(&key, &Stored::parse(before), before.len(), &counters, &layout);
        let reply = self.nodes.send(vec![cmd], Instant::now() + self.timeout).await?;
        Ok(reply.first().and_then(Value::as_i64) == Some(1))
    }

    /// How many members one of an entity's sorted sets holds (tests of its bound).
    #[cfg(test)]
    pub async fn set_len(&self, kind: EntityKind, id: &str, suffix: &str) -> Result<u64, StoreError> {
        let key = format!("{}:{suffix}", self.entity_key(kind, id));
        let client = self.nodes.client(self.nodes.slot(&key))?;
        Ok(client.custom(fred::cmd!("ZCARD"), vec![key]).await?)
    }

    /// An entity's counters key (`{entity_key}:st`, as `raw_counters` reads it), written
    /// as one argument without formatting machinery.
    fn counters_key_into(&self, args: &mut Args, kind: EntityKind, id: &str) {
        let prefix = self.prefix.as_bytes();
        args.concat(&[prefix, b":", kind.as_str().as_bytes(), b":{", id.as_bytes(), b"}:st"]);
    }

    /// `decision_key`, written as one argument.
    fn decision_key_into(&self, args: &mut Args, transaction_id: &str) {
        args.concat(&[self.prefix.as_bytes(), b":dec:{", transaction_id.as_bytes(), b"}"]);
    }

    /// An entity's keys share this base, and with it a hash tag: one cluster slot.
    fn entity_key(&self, kind: EntityKind, id: &str) -> String {
        format!("{}:{}:{{{id}}}", self.prefix, kind.as_str())
    }

    fn decision_key(&self, transaction_id: &str) -> String {
        format!("{}:dec:{{{transaction_id}}}", self.prefix)
    }
}

/// velocity.lua's ARGV[3..=5], the same for every call of a decision.
struct Common<'a> {
    args: Args,
    o: &'a Observation<'a>,
    tx_hash: u32,
}

impl<'a> Common<'a> {
    fn new(o: &'a Observation<'a>) -> Common<'a> {
        let mut args = Args::with_capacity(COMMON_ARGS, 48);
        args.int(RESERVATION_TTL_MS);
        args.int(KEY_TTL_MS);
        args.int(state::ttl_day(o.at_ms));
        debug_assert_eq!(args.len(), COMMON_ARGS);
        Common {
            args,
            o,
            tx_hash: state::hash(o.transaction_id),
        }
    }
}

/// The decision's event, as one entity records it.
fn event(o: &Observation<'_>, tx_hash: u32, linked: Option<&str>) -> state::Event {
    state::Event {
        at_ms: o.at_ms,
        tx_hash,
        amount: o.amount_ref_minor,
        link_hash: linked.map(state::hash),
    }
}

/// A reply slot that holds a stored record, or nothing ("" or nil).
fn record_of(v: Option<Value>) -> Result<Option<String>, StoreError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(v) => {
            let s = v
                .as_string()
                .ok_or_else(|| StoreError::Protocol("decision record is not a string".into()))?;
            Ok((!s.is_empty()).then_some(s))
        }
    }
}
