//! Redis Cluster: the sidecar unchanged against three nodes of the test's own. Velocity
//! counts as on one Redis; one node killed, only the decisions whose keys live on it go
//! on degraded; restarted (empty), counting resumes.

use fred::util::redis_keyslot;
use serde_json::{Value, json};
use std::time::Duration;
use testkit::RedisCluster;

use crate::helpers::*;

/// A request whose every key (transaction, card, customer, device, IP) is served by a
/// node in `nodes`. No e-mail: its key is a keyed hash the test cannot place.
fn placed(cluster: &RedisCluster, nodes: &[usize], card: &str, seq: &mut u32) -> (String, Value) {
    let on = |id: &str| nodes.contains(&cluster.node_of_slot(redis_keyslot(id.as_bytes())));
    let ip = loop {
        *seq += 1;
        let ip = format!("10.{}.{}.{}", *seq / 65_536 % 256, *seq / 256 % 256, *seq % 256);
        if on(&ip) {
            break ip;
        }
    };
    let tx = loop {
        let t = tx();
        if on(&t) {
            break t;
        }
    };
    let mut body = request(&tx, card);
    body["customer"] = json!({"id": format!("cus-{card}")});
    body["device"] = json!({"ip": ip, "id": format!("dev-{card}")});
    (tx, body)
}

/// A card whose card, customer and device keys are all served by `node`.
fn card_on(cluster: &RedisCluster, node: usize, tag: &str) -> String {
    (0..)
        .map(|i| format!("card-{tag}-{i}-{}", tx()))
        .find(|card| {
            [card.clone(), format!("cus-{card}"), format!("dev-{card}")]
                .iter()
                .all(|id| cluster.node_of_slot(redis_keyslot(id.as_bytes())) == node)
        })
        .expect("some card lands there")
}

fn card_count(answer: &Value) -> &str {
    answer["reasons"][0]["message"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_on_a_cluster_and_survives_one_node_down_for_the_others_entities() {
    let mut cluster = RedisCluster::start();
    let (_dir, policy) = policy_file(SHOW_CARD_COUNT);
    let app = Spawn::new(Backend::Redis)
        .set("RISK__REDIS__URL", cluster.url())
        .set("RISK__POLICY__PATH", policy.display())
        .set("RISK__REDIS__COMMAND_TIMEOUT_MS", 300)
        .start()
        .await;
    let (dead, alive) = (2, [0, 1]);
    let mut seq = 0;
    let healthy = card_on(&cluster, 0, "healthy");
    let doomed = card_on(&cluster, dead, "doomed");

    // As on one Redis: each decision counts, a retry does not.
    for n in 1..=3 {
        for card in [&healthy, &doomed] {
            let (_, body) = placed(&cluster, &alive, card, &mut seq);
            let answer = app.decide_ok(&body).await;
            assert_eq!(answer["degraded"], json!([]), "{answer}");
            assert_eq!(card_count(&answer), format!("card used {n} times in the last minute"));
        }
    }
    let (_, body) = placed(&cluster, &alive, &healthy, &mut seq);
    let first = app.decide_ok(&body).await;
    assert_eq!(app.decide_ok(&body).await, first, "a retry answers the stored decision");
    assert_eq!(card_count(&first), "card used 4 times in the last minute");

    cluster.kill(dead);
    // The client learns of the failure on its first command to that node; until then
    // a healthy decision may be caught in the same pipeline's timeout. Not after.
    let settled = eventually(Duration::from_secs(10), || async {
        let (_, body) = placed(&cluster, &alive, &healthy, &mut 1_000_000);
        app.decide_ok(&body).await["degraded"] == json!([])
    })
    .await;
    assert!(settled, "decisions on the live nodes did not resume");
    let before = app.decide_ok(&placed(&cluster, &alive, &healthy, &mut seq).1).await;
    let count_before: u32 = card_count(&before)
        .split_whitespace()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .expect("a count");
    for i in 1..=5 {
        let answer = app.decide_ok(&placed(&cluster, &alive, &healthy, &mut seq).1).await;
        assert_eq!(answer["degraded"], json!([]), "live node's entity: {answer}");
        assert_eq!(
            card_count(&answer),
            format!("card used {} times in the last minute", count_before + i),
            "counting goes on for the live nodes' entities"
        );
        let answer = app.decide_ok(&placed(&cluster, &alive, &doomed, &mut seq).1).await;
        assert_eq!(
            answer["degraded"],
            json!(["velocity_unavailable"]),
            "the dead node's entity: {answer}"
        );
    }

    cluster.restart(dead);
    let resumed = eventually(Duration::from_secs(10), || async {
        let (_, body) = placed(&cluster, &alive, &doomed, &mut 2_000_000);
        app.decide_ok(&body).await["degraded"] == json!([])
    })
    .await;
    assert!(resumed, "the restarted node's entities were not counted again");
    // It came back empty: the count starts again from what it saw since.
    let a = app.decide_ok(&placed(&cluster, &alive, &doomed, &mut seq).1).await;
    let b = app.decide_ok(&placed(&cluster, &alive, &doomed, &mut seq).1).await;
    let n = |v: &Value| -> u32 {
        card_count(v)
            .split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .expect("a count")
    };
    assert_eq!(b["degraded"], json!([]));
    assert_eq!(n(&b), n(&a) + 1, "counting resumed on the restarted node");
    assert!(n(&b) < 5, "the restarted node is empty, not its old counts: {b}");
    app.shutdown.shutdown().await;
}
