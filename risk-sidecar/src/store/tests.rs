//! One suite, every store: each case runs against the in-memory store, real Redis
//! (`REDIS_URL`, default redis://127.0.0.1:6379) and, when `REDIS_CLUSTER_URL` is set, a
//! Redis Cluster, each Redis case under its own key prefix.

use std::collections::HashMap;

use super::*;
use crate::settings::Settings;

const T0: i64 = 1_764_000_000_000;

fn settings(url: &str, prefix: &str, pool_size: &str) -> Settings {
    let overrides: HashMap<String, String> = [
        ("RISK__REDIS__URL", url),
        ("RISK__REDIS__POOL_SIZE", pool_size),
        ("RISK__REDIS__KEY_PREFIX", prefix),
        ("RISK__REDIS__MAX_EVENTS_PER_KEY", "50"),
        ("RISK__REDIS__MAX_LINKED_PER_KEY", "5"),
        // Generous: these tests check semantics, not latency, on a busy CI machine.
        ("RISK__REDIS__COMMAND_TIMEOUT_MS", "2000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    Settings::load_with(overrides).expect("test settings")
}

async fn redis_store(url: &str, prefix: &str, pool_size: &str) -> RedisStore {
    let s = settings(url, prefix, pool_size);
    let redis = RedisStore::connect(s.redis_url().expect("url"), &s.redis)
        .await
        .expect("redis client");
    assert_eq!(redis.state(), StoreState::Connected, "these tests need Redis at {url}");
    redis
}

/// The memory store, Redis at `REDIS_URL`, and a Redis Cluster at `REDIS_CLUSTER_URL`
/// when it is set (`make test` starts one: scripts/ensure-redis-cluster.sh).
async fn both_stores() -> Vec<(&'static str, VelocityStore)> {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let s = settings(&url, &prefix, "1");
    let mut stores = vec![
        (
            "memory",
            VelocityStore::Memory(std::sync::Arc::new(MemoryStore::new(StoreLimits::from(&s.redis)))),
        ),
        ("redis", VelocityStore::Redis(redis_store(&url, &prefix, "1").await)),
    ];
    if let Ok(cluster) = std::env::var("REDIS_CLUSTER_URL") {
        // Three connections per node: a node's commands must still share one pipeline.
        stores.push((
            "cluster",
            VelocityStore::Redis(redis_store(&cluster, &prefix, "3").await),
        ));
    }
    stores
}

fn obs<'a>(tx: &'a str, at_ms: i64, card: &'a str, customer: &'a str, amount: i64) -> Observation<'a> {
    Observation {
        transaction_id: tx,
        at_ms,
        amount_ref_minor: Some(amount),
        card: Some(card),
        customer,
        ip: Some("10.0.0.1"),
        device: Some("dev-1"),
        email: None,
        labels: true,
        reservation: None,
        deadline: None,
    }
}

#[tokio::test]
async fn counts_include_the_current_transaction_and_respect_windows() {
    for (name, store) in both_stores().await {
        // Events at -2h, -30m, -30s and now.
        let offsets = [-7_200_000, -1_800_000, -30_000, 0];
        let mut last = None;
        for (i, off) in offsets.iter().enumerate() {
            let tx = format!("tx{i}");
            last = Some(
                store
                    .observe(&obs(&tx, T0 + off, "card-a", "cus-a", 1000))
                    .await
                    .expect(name),
            );
        }
        let card = last.expect("observed").snapshot.card.expect("card stats");
        assert_eq!(card.counts, [2, 3, 4, 4, 4], "{name}: 1m 1h 24h 7d 30d");
        assert_eq!(card.amount_sums, [4000, 4000, 4000], "{name}");
        assert_eq!(card.amount_n, [4, 4, 4], "{name}");
        assert_eq!(card.first_seen_ms, T0 - 7_200_000, "{name}");
    }
}

#[tokio::test]
async fn a_retried_transaction_id_changes_no_counter() {
    for (name, store) in both_stores().await {
        store.observe(&obs("a", T0, "card-r", "cus-r", 500)).await.expect(name);
        let first = store
            .observe(&obs("b", T0 + 1, "card-r", "cus-r", 500))
            .await
            .expect(name);
        let retry = store
            .observe(&obs("b", T0 + 50_000, "card-r", "cus-r", 500))
            .await
            .expect(name);
        let (f, r) = (first.snapshot, retry.snapshot);
        assert_eq!(f.card.expect("card").counts, r.card.expect("card").counts, "{name}");
        assert_eq!(f.customer.counts, r.customer.counts, "{name}");
        assert!(r.customer.already_counted && !f.customer.already_counted, "{name}");
    }
}

/// A decision's snapshot is the state its own event made: concurrent decisions for one
/// customer, over several connections, each see a different count. (The Redis store
/// reads each string inside the script that writes it; a read in a second command could
/// take in another connection's event, though this test rarely catches that timing.)
#[tokio::test]
async fn concurrent_decisions_for_one_customer_each_see_their_own_count() {
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let mut stores = vec![("redis", VelocityStore::Redis(redis_store(&url, &prefix, "4").await))];
    if let Ok(cluster) = std::env::var("REDIS_CLUSTER_URL") {
        stores.push((
            "cluster",
            VelocityStore::Redis(redis_store(&cluster, &prefix, "3").await),
        ));
    }
    stores.push(("memory", both_stores().await.remove(0).1));
    const N: u32 = 24;
    for (name, store) in stores {
        let ids: Vec<String> = (0..N).map(|i| format!("tx-{i}")).collect();
        let observations: Vec<_> = ids.iter().map(|tx| obs(tx, T0, "card-c", "cus-c", 100)).collect();
        let observed = futures::future::join_all(observations.iter().map(|o| store.observe(o))).await;
        let mut counts: Vec<u32> = observed
            .into_iter()
            .map(|o| o.expect(name).snapshot.customer.counts[4])
            .collect();
        counts.sort_unstable();
        assert_eq!(counts, (1..=N).collect::<Vec<_>>(), "{name}");
    }
}

#[tokio::test]
async fn distinct_links_are_counted_over_24_hours_and_capped() {
    for (name, store) in both_stores().await {
        let mut last = None;
        for i in 0..8 {
            let (tx, card) = (format!("t{i}"), format!("card-{i}"));
            last = Some(
                store
                    .observe(&obs(&tx, T0 + i, &card, "cus-many", 100))
                    .await
                    .expect(name),
            );
        }
        let snap = last.expect("observed").snapshot;
        assert_eq!(snap.customer.linked_24h, 5, "{name}: 8 cards, capped at 5 per key");
        assert_eq!(snap.device.expect("device").linked_24h, 5, "{name}");
        assert_eq!(snap.card.expect("card").linked_24h, 1, "{name}: one customer per card");
        let later = store
            .observe(&obs("late", T0 + DAY_MS + 10, "card-x", "cus-many", 1))
            .await
            .expect(name);
        assert_eq!(
            later.snapshot.customer.linked_24h, 1,
            "{name}: yesterday's cards fell out"
        );
    }
}

#[tokio::test]
async fn beyond_the_ring_counts_come_from_buckets_and_age_out_after_30_days() {
    for (name, store) in both_stores().await {
        // 61 events in one minute: the ring holds 20; older windows read the buckets.
        for i in 0..61 {
            store
                .observe(&obs(&format!("c{i}"), T0 + i, "card-cap", "cus-cap", 1))
                .await
                .expect(name);
        }
        let o = store
            .observe(&obs("c61", T0 + 61, "card-cap", "cus-cap", 1))
            .await
            .expect(name);
        let card = o.snapshot.card.expect("card");
        assert_eq!(
            card.counts,
            [20, 62, 62, 62, 62],
            "{name}: 1m reads the ring (at least 20)"
        );
        assert_eq!(card.amount_sums, [62, 62, 62], "{name}");
        let month = store
            .observe(&obs("m", T0 + 31 * DAY_MS, "card-cap", "cus-cap", 1))
            .await
            .expect(name);
        assert_eq!(month.snapshot.card.expect("card").counts, [1, 1, 1, 1, 1], "{name}");
    }
}

#[tokio::test]
async fn both_stores_write_the_same_counter_bytes() {
    let stores = both_stores().await;
    // Out of order, retried, unknown amounts, links that churn, days and hours apart.
    let mut events = Vec::new();
    for i in 0..200i64 {
        let at = T0 + (i * 7_919 % 97) * 41 * 60_000 - (i % 5) * DAY_MS;
        let card = format!("card-{}", i % 3);
        let customer = format!("cus-{}", i % 23);
        let tx = format!("tx-{}", if i % 11 == 0 { i - 1 } else { i });
        events.push((tx, at, card, customer, i % 7 != 0));
    }
    for (name, store) in &stores {
        for (tx, at, card, customer, known) in &events {
            let mut o = obs(tx, *at, card, customer, 100 + *at % 1_000);
            if !known {
                o.amount_ref_minor = None;
            }
            store.observe(&o).await.expect(name);
        }
    }
    let [(_, VelocityStore::Memory(memory)), redis @ ..] = &stores[..] else {
        panic!("memory first");
    };
    for (name, store) in redis {
        let VelocityStore::Redis(redis) = store else {
            panic!("{name} is a Redis");
        };
        for (kind, id) in [
            (EntityKind::Card, "card-1"),
            (EntityKind::Customer, "cus-7"),
            (EntityKind::Device, "dev-1"),
            (EntityKind::Ip, "10.0.0.1"),
        ] {
            let in_memory = memory.raw_counters(kind, id).expect("memory counters");
            let in_redis = redis.raw_counters(kind, id).await.expect(name).expect("redis counters");
            assert_eq!(in_memory.len(), in_redis.len(), "{name}: {kind:?}");
            assert!(in_memory == in_redis, "{name}: {kind:?}: the stores' counters differ");
        }
    }
}

#[tokio::test]
async fn unknown_amounts_count_but_do_not_sum() {
    for (name, store) in both_stores().await {
        let mut o = obs("u1", T0, "card-u", "cus-u", 0);
        o.amount_ref_minor = None;
        store.observe(&o).await.expect(name);
        let snap = store
            .observe(&obs("u2", T0 + 1, "card-u", "cus-u", 700))
            .await
            .expect(name)
            .snapshot;
        let card = snap.card.expect("card");
        assert_eq!(
            (card.counts[2], card.amount_sums[0], card.amount_n[0]),
            (2, 700, 1),
            "{name}"
        );
        assert!(
            snap.ip.expect("ip").amount_n == [0, 0, 0],
            "{name}: no sums kept per IP"
        );
    }
}

#[tokio::test]
async fn decisions_are_stored_once_and_returned_to_retries() {
    for (name, store) in both_stores().await {
        assert_eq!(store.get_decision("d1").await.expect(name), None);
        assert_eq!(
            store.store_decision("d1", "{\"a\":1}").await.expect(name),
            None,
            "{name}"
        );
        assert_eq!(
            store.store_decision("d1", "{\"a\":2}").await.expect(name).as_deref(),
            Some("{\"a\":1}")
        );
        assert_eq!(
            store.get_decision("d1").await.expect(name).as_deref(),
            Some("{\"a\":1}")
        );
        let mut o = obs("d1", T0, "card-d", "cus-d", 1);
        o.reservation = Some("?pending");
        let retry = store.observe(&o).await.expect(name);
        assert_eq!(retry.stored_decision.as_deref(), Some("{\"a\":1}"), "{name}");
        // A new id is reserved by its first observation: the next one finds it.
        o.transaction_id = "d2";
        assert_eq!(store.observe(&o).await.expect(name).stored_decision, None, "{name}");
        // Another request's reservation: each names its own decision id.
        o.reservation = Some("?pending-too");
        assert_eq!(
            store.observe(&o).await.expect(name).stored_decision.as_deref(),
            Some("?pending"),
            "{name}: the second finds the reservation and counts nothing"
        );
        store.finish_decision("d2", "done".to_owned());
        let mut found = None;
        for _ in 0..100 {
            found = store.get_decision("d2").await.expect(name);
            if found.as_deref() == Some("done") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        assert_eq!(
            found.as_deref(),
            Some("done"),
            "{name}: the decision replaced the reservation"
        );
    }
}

#[tokio::test]
async fn ids_with_braces_stay_in_their_own_keys() {
    for (name, store) in both_stores().await {
        let a = store
            .observe(&obs("b1", T0, "x}y", "cus-{b", 1))
            .await
            .expect(name)
            .snapshot;
        let b = store
            .observe(&obs("b2", T0, "x", "cus-", 1))
            .await
            .expect(name)
            .snapshot;
        assert_eq!(a.card.expect("card").counts[0], 1, "{name}");
        assert_eq!(b.card.expect("card").counts[0], 1, "{name}: no collision with x}}y");
    }
}

#[tokio::test]
async fn amount_sums_cover_whole_hours() {
    for (name, store) in both_stores().await {
        // T0 starts an hour. 24h-sum hours are T0's hour and the 23 before it.
        let cases = [
            ("h-25", T0 - 25 * 3_600_000 + 1, 100),
            ("h-23", T0 - 23 * 3_600_000, 10),
            ("h0", T0 + 59_000, 1),
        ];
        let mut last = None;
        for (tx, at, amount) in cases {
            last = Some(
                store
                    .observe(&obs(tx, at, "card-h", "cus-h", amount))
                    .await
                    .expect(name),
            );
        }
        let card = last.expect("observed").snapshot.card.expect("card");
        assert_eq!(card.amount_sums, [11, 111, 111], "{name}");
        assert_eq!(card.amount_n, [2, 3, 3], "{name}");
        assert_eq!(card.counts[2], 2, "{name}: counts stay exact to the millisecond");
    }
}

#[tokio::test]
async fn back_dated_events_keep_the_counters_fixed_in_size() {
    const HOUR: i64 = 3_600_000;
    for (name, store) in both_stores().await {
        let card = format!("card-backdated-{}", uuid::Uuid::new_v4().simple());
        // One event in each of 1,500 different hours, newest first: every one is
        // before the newest, so only buckets still free take it.
        for i in 0..1_500 {
            let tx = format!("old-{i}");
            store
                .observe(&obs(&tx, T0 - i * HOUR, &card, "cus-backdated", 1))
                .await
                .unwrap_or_else(|e| panic!("{name}: event {i}: {e}"));
        }
        let now = store
            .observe(&obs("now", T0 + HOUR, &card, "cus-backdated", 5))
            .await
            .expect("a decision");
        let snapshot = now.snapshot.card.expect("card stats");
        // The 24 hour buckets before T0 + 1h hold 23 one-unit events and this one.
        assert_eq!(snapshot.amount_sums[0], 5 + 23, "{name}");
        if let VelocityStore::Redis(redis) = &store {
            use super::journal::{COMPACT_EVERY, ENTRY_LEN, FRAME};
            let bytes = redis
                .raw_counters(EntityKind::Card, &card)
                .await
                .expect("get")
                .expect("stored");
            let size = state::Layout::of(EntityKind::Card, 5).size();
            assert_eq!(bytes.len(), size, "{name}");
            // Stored: the block and a journal of fewer than two folds' worth (one may be
            // in flight).
            let stored = stored_card(redis, &card, name).await;
            assert!(stored.len() < FRAME + size + 2 * COMPACT_EVERY * ENTRY_LEN, "{name}");
        }
    }
}

fn entities<'a>(card: &'a str, customer: &'a str) -> TransactionEntities<'a> {
    TransactionEntities {
        card: Some(card),
        customer,
        ip: Some("10.0.0.1"),
        device: Some("dev-1"),
        email: Some("em-1"),
    }
}

fn label<'a>(tx: &'a str, at: i64, e: TransactionEntities<'a>, label: shared::Label) -> LabelUpdate<'a> {
    LabelUpdate {
        transaction_id: tx,
        occurred_at_ms: at,
        entities: e,
        label,
    }
}

#[tokio::test]
async fn labels_count_over_transaction_time_and_a_superseding_label_moves_them_back() {
    use shared::Label::{Fraud, Legitimate};
    for (name, store) in both_stores().await {
        let (card, customer) = (format!("card-l-{name}"), format!("cus-l-{name}"));
        let e = entities(&card, &customer);
        // Fraud 10 days ago and 2 days ago; a legitimate one yesterday.
        store
            .apply_label(&label("f1", T0 - 10 * DAY_MS, e, Fraud))
            .await
            .expect(name);
        store
            .apply_label(&label("f2", T0 - 2 * DAY_MS, e, Fraud))
            .await
            .expect(name);
        store
            .apply_label(&label("g1", T0 - DAY_MS, e, Legitimate))
            .await
            .expect(name);
        // Applying the same label again changes nothing.
        store
            .apply_label(&label("f2", T0 - 2 * DAY_MS, e, Fraud))
            .await
            .expect(name);
        let mut o = obs("now", T0, &card, &customer, 1);
        o.email = Some("em-1");
        let snap = store.observe(&o).await.expect(name).snapshot;
        let card_labels = snap.card.expect("card").labels.expect("read");
        assert_eq!(card_labels.fraud, [1, 2], "{name}: 7d, 30d");
        assert_eq!(card_labels.labelled_30d, 0, "{name}: no share kept per card");
        let device = snap.device.expect("device").labels.expect("read");
        assert_eq!((device.fraud, device.labelled_30d), ([1, 2], 3), "{name}");
        assert_eq!(snap.email.expect("email").fraud, [1, 2], "{name}");

        // A chargeback's fraud superseded by a manual review's legitimate, and back.
        store
            .apply_label(&label("f2", T0 - 2 * DAY_MS, e, Legitimate))
            .await
            .expect(name);
        let mut o = obs("now2", T0 + 1, &card, &customer, 1);
        o.email = Some("em-1");
        let snap = store.observe(&o).await.expect(name).snapshot;
        let device = snap.device.expect("device").labels.expect("read");
        assert_eq!((device.fraud, device.labelled_30d), ([0, 1], 3), "{name}");
        assert_eq!(snap.email.expect("email").fraud, [0, 1], "{name}");

        // Not read when switched off, and no e-mail entity then.
        let mut o = obs("now3", T0 + 2, &card, &customer, 1);
        (o.email, o.labels) = (Some("em-1"), false);
        let snap = store.observe(&o).await.expect(name).snapshot;
        assert!(
            snap.card.expect("card").labels.is_none() && snap.email.is_none(),
            "{name}"
        );
    }
}

#[tokio::test]
async fn declines_count_over_their_own_time_once_each() {
    for (name, store) in both_stores().await {
        let (card, customer) = (format!("card-d-{name}"), format!("cus-d-{name}"));
        let e = entities(&card, &customer);
        for (tx, at) in [
            ("d1", T0 - 2 * HOUR_MS),
            ("d2", T0 - 30 * 60_000),
            ("d2", T0 - 30 * 60_000),
        ] {
            store.record_decline(&e, tx, at).await.expect(name);
        }
        let snap = store
            .observe(&obs("t", T0, &card, &customer, 1))
            .await
            .expect(name)
            .snapshot;
        assert_eq!(
            snap.card.expect("card").labels.expect("read").declines,
            [1, 2],
            "{name}"
        );
        assert_eq!(snap.ip.expect("ip").labels.expect("read").declines, [1, 2], "{name}");
        assert_eq!(snap.customer.labels.expect("read").fraud, [0, 0], "{name}");
    }
}

#[tokio::test]
async fn label_sets_keep_their_horizon_and_their_cap() {
    for (name, store) in both_stores().await {
        let (card, customer) = (format!("card-c-{name}"), format!("cus-c-{name}"));
        let e = entities(&card, &customer);
        // 80 fraud labels 12 hours apart: the first 18 are more than 31 days before the
        // newest (the horizon), and the cap (50) keeps the newest of the rest.
        for i in 0..80 {
            let at = T0 - 40 * DAY_MS + i * 12 * HOUR_MS;
            let tx = format!("x{i}");
            store
                .apply_label(&label(&tx, at, e, shared::Label::Fraud))
                .await
                .expect(name);
        }
        let snap = store
            .observe(&obs("t", T0, &card, &customer, 1))
            .await
            .expect(name)
            .snapshot;
        let fraud = snap.card.expect("card").labels.expect("read").fraud;
        assert_eq!(fraud[1], 8, "{name}: the view's newest 8 (at least that many)");
        if let VelocityStore::Redis(redis) = &store {
            let kept = redis.set_len(EntityKind::Card, &card, "fr").await.expect("zcard");
            assert_eq!(kept, 50, "{name}: capped");
        }
    }
}

/// The Redis stores of `both_stores`.
async fn redis_stores() -> Vec<(&'static str, RedisStore)> {
    both_stores()
        .await
        .into_iter()
        .filter_map(|(name, store)| match store {
            VelocityStore::Redis(r) => Some((name, r)),
            VelocityStore::Memory(_) => None,
        })
        .collect()
}

/// A card's string as the Redis store holds it, block and journal.
async fn stored_card(redis: &RedisStore, card: &str, name: &str) -> Vec<u8> {
    let stored = redis.stored(EntityKind::Card, card).await.expect(name);
    stored.unwrap_or_else(|| panic!("{name}: {card} is not stored"))
}

#[tokio::test]
async fn the_journal_is_folded_into_its_block_so_a_read_stays_bounded() {
    use super::journal::{COMPACT_EVERY, ENTRY_LEN, FRAME, Stored};
    for (name, redis) in redis_stores().await {
        let card = format!("card-journal-{name}");
        for i in 0..50 {
            let tx = format!("j{i}");
            redis
                .observe(&obs(&tx, T0 + i * 60_000, &card, "cus-journal", 1))
                .await
                .expect(name);
        }
        // The folds are not awaited by the decisions: wait for the last one.
        let size = state::Layout::of(EntityKind::Card, 5).size();
        let mut raw = Vec::new();
        for _ in 0..100 {
            raw = stored_card(&redis, &card, name).await;
            if Stored::parse(&raw).entry_count() < COMPACT_EVERY {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let stored = Stored::parse(&raw);
        assert!(stored.valid, "{name}");
        // Folded at 8, 16, .. 48 entries (a fold overtaken by a later one is refused).
        assert!((1..=6).contains(&stored.generation), "{name}: {}", stored.generation);
        assert_eq!(stored.entry_count(), 2, "{name}");
        assert_eq!(raw.len(), FRAME + size + 2 * ENTRY_LEN, "{name}");
        let last = redis
            .observe(&obs("j50", T0 + 50 * 60_000, &card, "cus-journal", 1))
            .await
            .expect(name);
        assert_eq!(last.snapshot.card.expect("card").counts, [1, 51, 51, 51, 51], "{name}");
    }
}

#[tokio::test]
async fn a_fold_made_before_a_label_or_another_fold_is_refused_and_loses_nothing() {
    use super::journal::Stored;
    use shared::Label::Fraud;
    for (name, redis) in redis_stores().await {
        let (card, customer) = (format!("card-fold-{name}"), format!("cus-fold-{name}"));
        let e = entities(&card, &customer);
        let observe = |i: i64| {
            let (tx, redis) = (format!("fold-{i}"), &redis);
            let (card, customer) = (card.clone(), customer.clone());
            async move {
                let o = obs(&tx, T0 + i * 60_000, &card, &customer, 1);
                redis.observe(&o).await.expect("observe").snapshot.card.expect("card")
            }
        };
        for i in 0..3 {
            observe(i).await;
        }
        // As the decision that appended the third entry read it (with that entry).
        let seen = stored_card(&redis, &card, name).await;
        assert_eq!(Stored::parse(&seen).entry_count(), 3, "{name}: no block yet");
        // A label meanwhile starts the block: the fold from before it is refused.
        redis.apply_label(&label("fold-0", T0, e, Fraud)).await.expect(name);
        assert!(
            !redis.compact_from(EntityKind::Card, &card, &seen).await.expect(name),
            "{name}"
        );
        let card_now = observe(3).await;
        assert_eq!(
            (card_now.counts[4], card_now.labels.expect("read").fraud[0]),
            (4, 1),
            "{name}"
        );

        // A label written in place keeps the block's generation: the fold takes the view
        // as it is now, and the entries appended after its read.
        let seen = stored_card(&redis, &card, name).await;
        let generation = Stored::parse(&seen).generation;
        redis
            .apply_label(&label("fold-1", T0 + 60_000, e, Fraud))
            .await
            .expect(name);
        observe(4).await;
        assert!(
            redis.compact_from(EntityKind::Card, &card, &seen).await.expect(name),
            "{name}"
        );
        let raw = stored_card(&redis, &card, name).await;
        let stored = Stored::parse(&raw);
        assert_eq!((stored.generation, stored.entry_count()), (generation + 1, 1), "{name}");
        // The same fold again is refused: its generation has gone.
        assert!(
            !redis.compact_from(EntityKind::Card, &card, &seen).await.expect(name),
            "{name}"
        );
        let card_now = observe(5).await;
        assert_eq!(
            (card_now.counts[4], card_now.labels.expect("read").fraud[0]),
            (6, 2),
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_string_of_another_format_is_started_again() {
    use super::journal::Stored;
    for (name, redis) in redis_stores().await {
        let card = format!("card-format-{name}");
        // The counters as an older sidecar wrote them: the layout's string alone.
        let mut old = state::Layout::of(EntityKind::Card, 5).empty();
        old[16..20].copy_from_slice(&7u32.to_be_bytes());
        redis.put_stored(EntityKind::Card, &card, &old).await.expect(name);
        let o = obs("format-1", T0, &card, "cus-format", 1);
        let snap = redis.observe(&o).await.expect(name).snapshot;
        assert_eq!(snap.card.expect("card").counts, [1; 5], "{name}: read as new");
        let raw = stored_card(&redis, &card, name).await;
        let stored = Stored::parse(&raw);
        assert!(
            stored.valid && stored.entry_count() == 1,
            "{name}: the journal starts again"
        );
        let again = redis
            .observe(&obs("format-2", T0 + 1, &card, "cus-format", 1))
            .await
            .expect(name);
        assert_eq!(again.snapshot.card.expect("card").counts, [2; 5], "{name}");
    }
}
