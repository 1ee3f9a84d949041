//! The hot path's parts, each alone: parsing, features, policy, inference, and the
//! velocity round trip (in memory, and to the Redis at REDIS_URL).
//! End-to-end HTTP latency is measured by `make bench` (scripts/bench.sh).

use std::collections::HashMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use criterion::{Criterion, criterion_group, criterion_main};
use risk_sidecar::decision::features::FeatureContext;
use risk_sidecar::decision::input::DecisionInput;
use risk_sidecar::decision::policy::Policy;
use risk_sidecar::model::OnnxModel;
use risk_sidecar::settings::Settings;
use risk_sidecar::store::{MemoryStore, Observation, RedisStore, StoreLimits, StoreState};

const NOW: i64 = 1_764_000_000_000;

/// Writes one byte a cache line over `buffer`, evicting what the core held.
fn evict(buffer: &mut [u8], value: u8) {
    for line in buffer.chunks_mut(64) {
        line[0] = value;
    }
    black_box(&*buffer);
}

fn repo(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel)
}

fn body() -> Vec<u8> {
    serde_json::json!({
        "transaction_id": "ord_1042:pay_1",
        "amount": {"value_minor": 4599, "currency": "USD"},
        "customer": {"id": "cus_81", "email": "ann@example.com", "account_created_at": "2024-03-01T10:00:00Z"},
        "payment": {"card_fingerprint": "fp_9a8b7c", "bin": "411111", "last4": "1111", "card_country": "DE"},
        "device": {"ip": "203.0.113.7", "id": "dev_5", "user_agent": "Mozilla/5.0 (X11; Linux x86_64)"},
        "shipping": {"country": "DE"}, "billing": {"country": "DE"},
        "items": [{"sku": "sku-1", "quantity": 2, "unit_price_minor": 1500}, {"sku": "sku-2", "quantity": 1, "unit_price_minor": 1599}],
        "metadata": {"order": "1042", "channel": "web"}
    })
    .to_string()
    .into_bytes()
}

fn settings() -> Settings {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let overrides: HashMap<String, String> = [
        ("RISK__REDIS__URL".to_owned(), url),
        (
            "RISK__REDIS__KEY_PREFIX".to_owned(),
            format!("bench-{}", std::process::id()),
        ),
        ("RISK__REDIS__COMMAND_TIMEOUT_MS".to_owned(), "1000".to_owned()),
    ]
    .into();
    Settings::load_with(overrides).expect("bench settings")
}

fn hot_path(c: &mut Criterion) {
    let s = settings();
    let body = body();
    let input = DecisionInput::parse(&body, NOW).expect("valid body");
    let ctx = FeatureContext::new(&s.currency.rates, &s.currency.reference);
    let memory = MemoryStore::new(StoreLimits::from(&s.redis));
    let snapshot = memory
        .observe(&Observation {
            transaction_id: "t0",
            at_ms: NOW,
            amount_ref_minor: Some(4231),
            card: Some("fp_9a8b7c"),
            customer: "cus_81",
            ip: Some("203.0.113.7"),
            device: Some("dev_5"),
            email: Some("buyer@example.com"),
            labels: true,
            reservation: None,
            deadline: None,
        })
        .snapshot;
    let features = ctx.compute(&input, Some(&snapshot));
    let policy_text = std::fs::read_to_string(repo("risk-sidecar/configuration/policy.yaml")).expect("policy");
    let policy = Policy::from_yaml(&policy_text).expect("valid policy");
    let model = OnnxModel::load(&repo("models/fixture"), 1, "").expect("fixture model loads");

    c.bench_function("input/parse_and_validate", |b| {
        b.iter(|| DecisionInput::parse(black_box(&body), NOW))
    });
    c.bench_function("features/compute", |b| {
        b.iter(|| ctx.compute(black_box(&input), Some(&snapshot)))
    });
    c.bench_function("policy/decide_shipped_rules", |b| {
        b.iter(|| policy.decide(0.3, black_box(&features), true, None))
    });
    c.bench_function("model/inference_one_row", |b| {
        b.iter(|| model.score(black_box(&features)))
    });
    // The shipped model: its isolation forest alone, then forest + classifier (what a
    // decision runs), then TreeSHAP over the classifier's input (anomaly score included).
    let shipped = OnnxModel::load(&repo("models/lgbm"), 1, "").expect("shipped model loads");
    c.bench_function("model/iforest_one_row_shipped_model", |b| {
        b.iter(|| shipped.anomaly_score(black_box(&features)))
    });
    c.bench_function("model/inference_one_row_shipped_model", |b| {
        b.iter(|| shipped.assess(black_box(&features)))
    });
    // The same after other work has taken the caches, as between two requests at a paced
    // rate (Redis, the generator and the kernel run in between; on a shared host, other
    // machines too). Only the call is timed, after writing a buffer larger than this
    // machine's L2 (1 MiB a core), then larger than its L3 (32 MiB). A row walks one path
    // down each of the shipped model's 213 trees (14,715 nodes): cold, mostly misses.
    let mut sweep = vec![0u8; 64 << 20];
    let mut cold = c.benchmark_group("model");
    // Criterion counts only the timed part, so a sweep of all caches (milliseconds) gets
    // short warm-up and measurement times, or it would run for minutes.
    let ms = std::time::Duration::from_millis;
    for (name, bytes, samples, warm_up, measure) in [
        (
            "inference_one_row_shipped_model_l2_cold",
            2 << 20,
            50,
            ms(1000),
            ms(3000),
        ),
        (
            "inference_one_row_shipped_model_all_caches_cold",
            64 << 20,
            10,
            ms(200),
            ms(500),
        ),
    ] {
        cold.sample_size(samples)
            .warm_up_time(warm_up)
            .measurement_time(measure);
        cold.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut spent = std::time::Duration::ZERO;
                for i in 0..iters {
                    evict(&mut sweep[..bytes], i as u8);
                    let start = std::time::Instant::now();
                    black_box(shipped.assess(black_box(&features)).expect("scores"));
                    spent += start.elapsed();
                }
                spent
            })
        });
    }
    cold.finish();
    let explainer = shipped.explainer.as_ref().expect("the shipped model has its trees");
    let anomaly = shipped.assess(&features).expect("scores").anomaly;
    let row = shipped.input_row(&features, anomaly);
    c.bench_function("model/explain_top3_shipped_model", |b| {
        b.iter(|| explainer.top_raising(black_box(row.as_slice()), 3))
    });

    let n = AtomicU64::new(0);
    c.bench_function("velocity/memory_observe", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let (tx, card) = (format!("m{i}"), format!("card-{}", i % 1000));
            memory.observe(&Observation {
                transaction_id: &tx,
                at_ms: NOW + i as i64,
                amount_ref_minor: Some(4231),
                card: Some(&card),
                customer: "cus_81",
                ip: Some("203.0.113.7"),
                device: Some("dev_5"),
                email: Some("buyer@example.com"),
                labels: true,
                reservation: None,
                deadline: None,
            })
        })
    });

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let redis = rt
        .block_on(RedisStore::connect(s.redis_url().expect("url"), &s.redis))
        .expect("client");
    if redis.state() != StoreState::Connected {
        eprintln!("velocity/redis_observe skipped: no Redis at REDIS_URL");
        return;
    }
    // Typical traffic: entities with a handful of events each. Hot: every decision on one
    // customer, IP and device whose keys sit at the event cap (an attack, or a busy NAT).
    for (name, pool) in [
        ("velocity/redis_round_trip_typical", 100_000u64),
        ("velocity/redis_round_trip_hot_keys", 1),
    ] {
        c.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                let i = n.fetch_add(1, Ordering::Relaxed);
                let k = i.wrapping_mul(2_654_435_761) % pool;
                let (tx, card, customer) = (format!("r{i}"), format!("card-{k}"), format!("cus-{k}"));
                let (ip, device) = (format!("ip-{k}"), format!("dev-{k}"));
                redis
                    .observe(&Observation {
                        transaction_id: &tx,
                        at_ms: NOW + i as i64,
                        amount_ref_minor: Some(4231),
                        card: Some(&card),
                        customer: &customer,
                        ip: Some(&ip),
                        device: Some(&device),
                        email: Some(&customer),
                        labels: true,
                        reservation: Some("?bench"),
                        deadline: None,
                    })
                    .await
                    .expect("redis observe")
            })
        });
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(std::time::Duration::from_secs(3));
    targets = hot_path
}
criterion_main!(benches);
