//! The connections to Redis: one pool for a single Redis, or for a Redis Cluster one
//! pool per primary and the slot table, routed here rather than by fred's cluster
//! client. fred 10.1 re-syncs the whole cluster when one connection breaks and fails the
//! sync while any primary is unreachable (aembke/fred.rs#363), so one dead node took
//! every decision's counters with it. Here a dead node fails only the commands for its
//! slots; the others go on. The table is re-read every second from any live node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use fred::clients::{Client, Pipeline, Pool};
use fred::interfaces::{ClientLike, LuaInterface};
use fred::prelude::Config;
use fred::types::config::{Options, Server, ServerConfig};
use fred::types::{ClusterHash, CustomCommand, Value};
use futures::future::join_all;
use tokio::time::Instant;

use super::StoreError;

/// One command of a batch: its name, its arguments, the slot of its first key.
pub struct Cmd {
    pub slot: u16,
    pub name: &'static str,
    pub args: Vec<Value>,
}

impl Cmd {
    /// The command, routed by its key's slot.
    fn command(&self) -> CustomCommand {
        CustomCommand::new_static(self.name, ClusterHash::Custom(self.slot), false)
    }
}

/// How often the cluster's slot table is read again.
const REFRESH_EVERY: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub enum Nodes {
    Single(Pool),
    Cluster(Arc<Cluster>),
}

pub struct Cluster {
    routes: ArcSwap<Routes>,
    /// Every pool made so far, by address: a node that returns keeps its pool.
    pools: std::sync::Mutex<HashMap<(String, u16), Pool>>,
    config: Config,
    make_pool: Box<dyn Fn(Config) -> Result<Pool, StoreError> + Send + Sync>,
}

#[derive(Default)]
struct Routes {
    /// Sorted slot ranges and the index of the pool serving each.
    ranges: Vec<(u16, u16, usize)>,
    pools: Vec<Pool>,
}

impl Nodes {
    /// For a cluster: a pool per seed node now, the slot table once one answers, then
    /// every second. `make_pool` builds (and starts connecting) one node's pool.
    pub fn cluster(
        config: Config,
        make_pool: impl Fn(Config) -> Result<Pool, StoreError> + Send + Sync + 'static,
    ) -> Result<Nodes, StoreError> {
        let cluster = Arc::new(Cluster {
            routes: ArcSwap::from_pointee(Routes::default()),
            pools: std::sync::Mutex::new(HashMap::new()),
            config,
            make_pool: Box::new(make_pool),
        });
        for server in cluster.config.server.hosts() {
            cluster.pool_for(&server.host, server.port)?;
        }
        let weak = Arc::downgrade(&cluster);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REFRESH_EVERY);
            loop {
                tick.tick().await;
                let Some(cluster) = weak.upgrade() else { return };
                cluster.refresh().await;
            }
        });
        Ok(Nodes::Cluster(cluster))
    }

    /// A command whose first key is `key` (`args` hold it, after the sha and the key
    /// count for an EVALSHA). The slot is hashed only where it routes: on a cluster.
    pub fn cmd(&self, name: &'static str, key: &[u8], args: Vec<Value>) -> Cmd {
        let slot = match self {
            Nodes::Single(_) => 0,
            Nodes::Cluster(_) => fred::util::redis_keyslot(key),
        };
        Cmd { slot, name, args }
    }

    /// EVALSHA as a custom command (fred's pipeline has no evalsha), routed by its first
    /// key: argument 2, after the sha and the key count.
    pub fn evalsha(&self, args: Vec<Value>) -> Cmd {
        let mut cmd = self.cmd(
            "EVALSHA",
            args.get(2).and_then(Value::as_bytes).unwrap_or_default(),
            Vec::new(),
        );
        cmd.args = args;
        cmd
    }

    /// The slot of `key` (0 on a single Redis).
    pub fn slot(&self, key: &str) -> u16 {
        self.cmd("", key.as_bytes(), Vec::new()).slot
    }

    /// Every pool (a cluster's known nodes).
    pub fn pools(&self) -> Vec<Pool> {
        match self {
            Nodes::Single(pool) => vec![pool.clone()],
            Nodes::Cluster(c) => c.pools.lock().expect("pools lock").values().cloned().collect(),
        }
    }

    /// Connected: a single Redis, or a cluster whose every slot has a live node.
    pub fn connected(&self) -> bool {
        match self {
            Nodes::Single(pool) => pool.clients().iter().all(|c| c.is_connected()),
            Nodes::Cluster(c) => {
                let routes = c.routes.load();
                !routes.ranges.is_empty() && routes.pools.iter().all(|p| p.next_connected().is_connected())
            }
        }
    }

    /// Reads the cluster's slot table now (a no-op for a single Redis).
    pub async fn refresh(&self) {
        if let Nodes::Cluster(c) = self {
            c.refresh().await;
        }
    }

    /// A connected client for `slot`'s node, or an immediate error: while a node is
    /// down a decision must not wait out a timeout to learn what its state says.
    pub fn client(&self, slot: u16) -> Result<Client, StoreError> {
        let client = match self {
            Nodes::Single(pool) => pool.next_connected().clone(),
            Nodes::Cluster(c) => {
                let routes = c.routes.load();
                let node = routes.node(slot).ok_or(StoreError::Disconnected)?;
                routes.pools[node].next_connected().clone()
            }
        };
        if client.is_connected() {
            Ok(client)
        } else {
            Err(StoreError::Disconnected)
        }
    }

    /// The commands in one round trip: one pipeline, or on a cluster one per node, sent
    /// at once, answered by `deadline`. Replies in the commands' order; any failure
    /// fails the batch.
    pub async fn send(&self, cmds: Vec<Cmd>, deadline: Instant) -> Result<Vec<Value>, StoreError> {
        let batch = async {
            match self {
                Nodes::Single(_) => pipelined(self.client(0)?, cmds).await,
                Nodes::Cluster(c) => {
                    // Grouped by node, then one connection per node: a node's commands
                    // stay in one pipeline, in order.
                    let routes = c.routes.load();
                    let mut groups: Vec<(usize, Vec<usize>, Vec<Cmd>)> = Vec::new();
                    let n = cmds.len();
                    for (i, cmd) in cmds.into_iter().enumerate() {
                        let node = routes.node(cmd.slot).ok_or(StoreError::Disconnected)?;
                        match groups.iter_mut().find(|(g, _, _)| *g == node) {
                            Some((_, at, group)) => {
                                at.push(i);
                                group.push(cmd);
                            }
                            None => groups.push((node, vec![i], vec![cmd])),
                        }
                    }
                    let mut order = Vec::with_capacity(groups.len());
                    let mut sent = Vec::with_capacity(groups.len());
                    for (node, at, group) in groups {
                        let client = routes.pools[node].next_connected();
                        if !client.is_connected() {
                            return Err(StoreError::Disconnected);
                        }
                        order.push(at);
                        sent.push(pipelined(client.clone(), group));
                    }
                    let mut replies = vec![Value::Null; n];
                    for (at, result) in order.into_iter().zip(join_all(sent).await) {
                        for (i, v) in at.into_iter().zip(result?) {
                            replies[i] = v;
                        }
                    }
                    Ok(replies)
                }
            }
        };
        tokio::time::timeout_at(deadline, batch)
            .await
            .map_err(|_| StoreError::Timeout)?
    }

    /// Into the script cache of every node that answers (an EVALSHA goes to its key's
    /// node; a node that restarts empty answers NOSCRIPT and gets it then).
    pub async fn script_load(&self, script: &str) -> Result<(), StoreError> {
        let pools = self.pools();
        let loads = pools
            .iter()
            .map(|p| p.next_connected())
            .filter(|c| c.is_connected())
            .map(|c| c.script_load::<String, _>(script));
        let results = join_all(loads).await;
        if results.is_empty() {
            return Err(StoreError::Disconnected);
        }
        results
            .into_iter()
            .try_for_each(|r| r.map(drop).map_err(StoreError::from))
    }
}

async fn pipelined(client: Client, mut cmds: Vec<Cmd>) -> Result<Vec<Value>, StoreError> {
    // No timeout of fred's own: `send`'s bounds the batch. A second timer on every
    // decision's path costs a wake-up of the worker's IO driver (an eventfd write and an
    // idle epoll return) each time one is set earlier than the driver's next wake.
    let no_timeout = Options {
        timeout: Some(Duration::ZERO),
        ..Options::default()
    };
    let client = client.with_options(&no_timeout);
    // One command (a decision on a single Redis): sent alone, it skips the pipeline's
    // buffering and copying of commands; on the wire it is the same frame.
    if cmds.len() == 1
        && let Some(cmd) = cmds.pop()
    {
        let reply: Value = client.custom(cmd.command(), cmd.args).await?;
        return Ok(vec![reply]);
    }
    let pipeline = Pipeline::from(client);
    for cmd in cmds {
        let () = pipeline.custom(cmd.command(), cmd.args).await?;
    }
    Ok(pipeline.all().await?)
}

impl Routes {
    /// The index of the pool serving `slot`, if the table covers it.
    fn node(&self, slot: u16) -> Option<usize> {
        let at = self.ranges.partition_point(|(_, end, _)| *end < slot);
        match self.ranges.get(at) {
            Some((start, _, i)) if *start <= slot => Some(*i),
            _ => None,
        }
    }
}

impl Cluster {
    fn pool_for(&self, host: &str, port: u16) -> Result<Pool, StoreError> {
        let mut pools = self.pools.lock().expect("pools lock");
        if let Some(pool) = pools.get(&(host.to_owned(), port)) {
            return Ok(pool.clone());
        }
        let mut config = self.config.clone();
        config.server = ServerConfig::Centralized {
            server: Server::new(host, port),
        };
        let pool = (self.make_pool)(config)?;
        pools.insert((host.to_owned(), port), pool.clone());
        Ok(pool)
    }

    /// `CLUSTER SLOTS` from the first live node that answers; the routes replaced when
    /// it parses. A failure keeps the old routes (and is retried next second).
    async fn refresh(&self) {
        let pools: Vec<((String, u16), Pool)> = self
            .pools
            .lock()
            .expect("pools lock")
            .iter()
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for ((asked, _), pool) in pools {
            let client = pool.next_connected();
            if !client.is_connected() {
                continue;
            }
            let reply: Result<Value, _> = client
                .custom(
                    CustomCommand::new_static("CLUSTER", ClusterHash::Random, false),
                    vec![Value::from("SLOTS")],
                )
                .await;
            let Ok(reply) = reply else { continue };
            match self.parse_slots(reply, &asked) {
                Ok(routes) => {
                    let changed = self.routes.load().ranges != routes.ranges;
                    self.routes.store(Arc::new(routes));
                    if changed {
                        tracing::info!("Redis Cluster slot table read.");
                    }
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "Unreadable CLUSTER SLOTS reply."),
            }
        }
    }

    /// `[[start, end, [host, port, id, …], replicas…], …]`: the primary of each range.
    /// A node that does not know its own address answers "" or "?" for it: the host we
    /// asked (`asked`) stands in, as Redis's docs say clients should do.
    fn parse_slots(&self, reply: Value, asked: &str) -> Result<Routes, StoreError> {
        let bad = |what: &str| StoreError::Protocol(format!("CLUSTER SLOTS: {what}"));
        let Value::Array(ranges) = reply else {
            return Err(bad("not an array"));
        };
        let mut routes = Routes::default();
        let mut index: HashMap<(String, u16), usize> = HashMap::new();
        for range in ranges {
            let Value::Array(fields) = range else {
                return Err(bad("a range is not an array"));
            };
            let (Some(start), Some(end), Some(Value::Array(primary))) = (
                fields.first().and_then(Value::as_u64),
                fields.get(1).and_then(Value::as_u64),
                fields.get(2),
            ) else {
                return Err(bad("a range without its primary"));
            };
            let (Some(host), Some(port)) = (
                primary.first().and_then(|h| h.as_string()),
                primary.get(1).and_then(Value::as_u64),
            ) else {
                return Err(bad("a primary without host and port"));
            };
            let (Ok(start), Ok(end), Ok(port)) = (u16::try_from(start), u16::try_from(end), u16::try_from(port)) else {
                return Err(bad("a number out of range"));
            };
            let host = if host.is_empty() || host == "?" {
                asked.to_owned()
            } else {
                host
            };
            let key = (host.clone(), port);
            let i = match index.get(&key) {
                Some(i) => *i,
                None => {
                    routes.pools.push(self.pool_for(&host, port)?);
                    index.insert(key, routes.pools.len() - 1);
                    routes.pools.len() - 1
                }
            };
            routes.ranges.push((start, end, i));
        }
        routes.ranges.sort_unstable();
        Ok(routes)
    }
}
