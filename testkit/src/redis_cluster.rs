//! A three-node Redis Cluster on loopback ports, owned by one test: its nodes are this
//! process's children, each can be killed and restarted (it comes back with its slots
//! and no data, as a node without persistence does), and all are stopped on drop.
//!
//! `cluster-require-full-coverage no` and a short node timeout, as production should
//! run it: one node down leaves the others serving their slots.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisCluster {
    dir: PathBuf,
    nodes: Vec<Node>,
    /// Slot ranges and the node serving each, read once: a restarted node keeps its slots.
    slots: Vec<(u16, u16, usize)>,
}

struct Node {
    port: u16,
    child: Option<Child>,
}

/// The node timeout: how long the others wait before they call a silent node failed.
const NODE_TIMEOUT_MS: u64 = 500;

impl RedisCluster {
    /// Starts three masters and joins them (`redis-cli --cluster create`); panics with
    /// the reason when redis-server or redis-cli is missing or the cluster does not form.
    pub fn start() -> RedisCluster {
        let dir = std::env::temp_dir().join(format!("redis-cluster-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).expect("cluster directory");
        let mut cluster = RedisCluster {
            dir,
            nodes: cluster_ports(3)
                .into_iter()
                .map(|port| Node { port, child: None })
                .collect(),
            slots: Vec::new(),
        };
        for i in 0..cluster.nodes.len() {
            cluster.spawn(i);
        }
        for i in 0..cluster.nodes.len() {
            cluster.wait_answering(i);
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli runs (Debian's redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_state_ok(Duration::from_secs(20));
        cluster.slots = cluster.read_slots();
        cluster
    }

    /// The URL the sidecar takes (fred's form: the first node, then the others).
    pub fn url(&self) -> String {
        let mut url = format!("redis-cluster://127.0.0.1:{}", self.nodes[0].port);
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            url.push(if i == 1 { '?' } else { '&' });
            url.push_str(&format!("node=127.0.0.1:{}", node.port));
        }
        url
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The node (by index) that serves `slot`.
    pub fn node_of_slot(&self, slot: u16) -> usize {
        self.slots
            .iter()
            .find(|(a, b, _)| (*a..=*b).contains(&slot))
            .map(|(_, _, i)| *i)
            .unwrap_or_else(|| panic!("no node serves slot {slot}"))
    }

    /// Each node's slot ranges, from the first node's `CLUSTER NODES`.
    fn read_slots(&self) -> Vec<(u16, u16, usize)> {
        let text = cli(self.nodes[0].port, &["cluster", "nodes"]);
        let mut slots = Vec::new();
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(port) = fields
                .get(1)
                .and_then(|addr| addr.split(['@', ':']).nth(1))
                .and_then(|p| p.parse::<u16>().ok())
            else {
                continue;
            };
            let Some(i) = self.nodes.iter().position(|n| n.port == port) else {
                continue;
            };
            for range in fields.iter().skip(8) {
                let mut ends = range.split('-').filter_map(|e| e.parse::<u16>().ok());
                match (ends.next(), ends.next()) {
                    (Some(a), Some(b)) => slots.push((a, b, i)),
                    (Some(a), None) => slots.push((a, a, i)),
                    _ => {}
                }
            }
        }
        assert_eq!(
            slots.iter().map(|(a, b, _)| u32::from(b - a) + 1).sum::<u32>(),
            16_384,
            "every slot served:\n{text}"
        );
        slots
    }

    /// Kills node `i`'s process (SIGKILL: a crash, not a shutdown) and waits until the
    /// others mark it failed.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let dead = self.nodes[i].port;
        let other = self
            .nodes
            .iter()
            .map(|n| n.port)
            .find(|&p| p != dead)
            .expect("another node");
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let nodes = cli(other, &["cluster", "nodes"]);
            let failed = nodes
                .lines()
                .any(|l| l.contains(&format!(":{dead}@")) && l.contains("fail") && !l.contains("fail?"));
            if failed {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not mark node {dead} failed");
    }

    /// Starts node `i` again on its port with its cluster file: the same node id and
    /// slots, empty (nothing is persisted). Waits until the cluster is whole again.
    pub fn restart(&mut self, i: usize) {
        self.spawn(i);
        self.wait_answering(i);
        self.wait_state_ok(Duration::from_secs(20));
    }

    fn spawn(&mut self, i: usize) {
        let port = self.nodes[i].port;
        let node_dir = self.dir.join(port.to_string());
        std::fs::create_dir_all(&node_dir).expect("node directory");
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--cluster-require-full-coverage", "no"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(&node_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs (Debian's redis-server)");
        self.nodes[i].child = Some(child);
    }

    fn alive(&self, port: u16) -> bool {
        Command::new("redis-cli")
            .args(["-p", &port.to_string(), "ping"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "PONG")
            .unwrap_or(false)
    }

    fn wait_answering(&self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.alive(self.nodes[i].port) {
            assert!(
                Instant::now() < deadline,
                "redis-server on {} did not answer",
                self.nodes[i].port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Every node answers `cluster_state:ok` and knows every other as connected.
    fn wait_state_ok(&self, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let ok = self.nodes.iter().all(|n| {
                cli(n.port, &["cluster", "info"]).contains("cluster_state:ok")
                    && !cli(n.port, &["cluster", "nodes"]).contains("fail")
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not reach cluster_state:ok");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn cli(port: u16, args: &[&str]) -> String {
    Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// `n` free ports whose cluster bus ports (port + 10000) are free too.
fn cluster_ports(n: usize) -> Vec<u16> {
    let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
    let mut ports = Vec::with_capacity(n);
    while ports.len() < n {
        let port = crate::free_port();
        if port < 55_000 && free(port + 10_000) && !ports.contains(&port) {
            ports.push(port);
        }
    }
    ports
}
