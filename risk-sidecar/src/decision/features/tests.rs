use super::*;
use proptest::prelude::*;
use shared::feature_index;

use crate::settings::Settings;

const AT: i64 = 1_764_000_000_000; // 2025-11-24T16:00:00Z, a Monday

fn ctx() -> FeatureContext {
    let s = Settings::load_with(Default::default()).expect("defaults");
    FeatureContext::new(&s.currency.rates, &s.currency.reference)
}

fn input() -> DecisionInput {
    DecisionInput {
        transaction_id: "t1".into(),
        occurred_at_ms: AT,
        amount_minor: 10_000,
        currency: *b"USD",
        customer_id: "c1".into(),
        email_domain: Some("x.mailinator.com".into()),
        account_created_at_ms: Some(AT - 10 * 86_400_000),
        method: PaymentMethod::Card,
        card_fingerprint: Some("fp".into()),
        card_country: Some(*b"DE"),
        ip_key: None,
        device_id: None,
        shipping_country: Some(*b"FR"),
        billing_country: Some(*b"DE"),
        item_count: 2,
        distinct_skus: 1,
        record: Default::default(),
    }
}

fn get(v: &FeatureVector, name: &str) -> f32 {
    v.0[feature_index(name).expect(name)]
}

#[test]
fn request_only_features_are_derived() {
    let v = ctx().compute(&input(), None);
    assert_eq!(get(&v, "amount_ref"), 92.0, "100 USD at 0.92");
    assert_eq!(get(&v, "account_age_days"), 10.0);
    assert_eq!(get(&v, "card_country_ne_shipping"), 1.0);
    assert_eq!(get(&v, "card_country_ne_billing"), 0.0);
    assert_eq!(get(&v, "email_disposable"), 1.0, "subdomain of a listed domain");
    assert_eq!(get(&v, "hour_of_day"), 16.0);
    assert_eq!(get(&v, "day_of_week"), 0.0);
    assert_eq!(get(&v, "item_count"), 2.0);
    assert!(get(&v, "card_count_1m").is_nan(), "no snapshot: velocity unknown");
}

#[test]
fn velocity_features_come_from_the_snapshot() {
    let card = EntityStats {
        counts: [3, 4, 5, 6, 7],
        amount_sums: [30_000, 40_000, 50_000],
        amount_n: [3, 4, 5],
        first_seen_ms: AT - 60_000,
        linked_24h: 2,
        already_counted: false,
        labels: None,
    };
    let customer = EntityStats {
        amount_sums: [0, 0, 9_200 + 4_000],
        amount_n: [0, 0, 3],
        ..EntityStats::default()
    };
    let snap = VelocitySnapshot {
        card: Some(card),
        customer,
        ip: None,
        device: None,
        email: None,
    };
    let v = ctx().compute(&input(), Some(&snap));
    assert_eq!(get(&v, "card_count_1h"), 4.0);
    assert_eq!(get(&v, "card_distinct_customers_24h"), 2.0);
    assert_eq!(get(&v, "card_amount_sum_7d"), 400.0);
    assert_eq!(get(&v, "card_amount_mean_30d"), 100.0);
    assert_eq!(get(&v, "card_age_seconds"), 60.0);
    assert_eq!(get(&v, "amount_to_customer_mean_30d"), 4.6, "92 against a usual 20");
    assert!(get(&v, "device_count_1h").is_nan(), "no device in the request");
    assert!(get(&v, "customer_amount_mean_24h").is_nan(), "no amounts in the window");
}

#[test]
fn label_features_come_from_the_label_counters() {
    let labels = |fraud, labelled_30d, declines| LabelStats {
        fraud,
        labelled_30d,
        declines,
    };
    let with = |l: Option<LabelStats>| EntityStats {
        labels: l,
        ..EntityStats::default()
    };
    let snap = VelocitySnapshot {
        card: Some(with(Some(labels([1, 2], 0, [3, 4])))),
        customer: with(Some(labels([0, 1], 0, [0, 0]))),
        ip: Some(with(Some(labels([1, 1], 4, [0, 2])))),
        device: Some(with(Some(labels([2, 3], 0, [1, 1])))),
        email: Some(labels([1, 5], 0, [0, 0])),
    };
    let mut i = input();
    i.record.email = Some("ann@x.mailinator.com".into());
    let v = ctx().compute(&i, Some(&snap));
    assert_eq!(get(&v, "card_fraud_count_7d"), 1.0);
    assert_eq!(get(&v, "card_fraud_count_30d"), 2.0);
    assert_eq!(get(&v, "customer_fraud_count_30d"), 1.0);
    assert_eq!(get(&v, "email_fraud_count_30d"), 5.0);
    assert_eq!(get(&v, "ip_fraud_share_30d"), 0.25, "1 fraud of 4 labelled");
    assert!(get(&v, "device_fraud_share_30d").is_nan(), "nothing labelled: no share");
    assert_eq!(get(&v, "card_decline_count_1h"), 3.0);
    assert_eq!(get(&v, "ip_decline_count_24h"), 2.0);

    // Counters not read (switched off): unknown, not zero.
    let off = VelocitySnapshot {
        card: Some(with(None)),
        customer: with(None),
        ..VelocitySnapshot::default()
    };
    let v = ctx().with_labels(false, EmailKeying::Plain).compute(&i, Some(&off));
    assert!(get(&v, "card_fraud_count_30d").is_nan() && get(&v, "email_fraud_count_7d").is_nan());
    // On, an address not keyed (no decision log) has nothing to find: 0.
    let v = ctx().compute(&i, Some(&VelocitySnapshot::default()));
    assert_eq!(get(&v, "email_fraud_count_7d"), 0.0);
    assert!(
        get(&ctx().compute(&input(), Some(&snap)), "email_fraud_count_7d").is_nan(),
        "no address"
    );
}

#[test]
fn currencies_convert_with_their_exponent_and_unknown_ones_are_nan() {
    let c = ctx();
    assert_eq!(
        c.to_reference_minor(10_000, *b"KRW"),
        Some(680),
        "10,000 won, exponent 0"
    );
    assert_eq!(c.to_reference_minor(100, *b"EUR"), Some(100));
    assert_eq!(c.to_reference_minor(100, *b"XTS"), None);
    let mut i = input();
    i.currency = *b"XTS";
    assert!(get(&ctx().compute(&i, None), "amount_ref").is_nan());
}

fn stats() -> impl Strategy<Value = EntityStats> {
    (any::<[u16; 5]>(), any::<[u32; 3]>(), any::<[u8; 3]>(), any::<u16>()).prop_map(|(c, s, n, l)| EntityStats {
        counts: c.map(u32::from),
        amount_sums: s.map(i64::from),
        amount_n: n.map(u32::from),
        first_seen_ms: AT - 1_000,
        linked_24h: u32::from(l),
        already_counted: false,
        labels: Some(LabelStats {
            fraud: [u32::from(l % 7), u32::from(l % 11)],
            labelled_30d: u32::from(l % 3),
            declines: [u32::from(l % 5), u32::from(l % 13)],
        }),
    })
}

proptest! {
    #[test]
    fn every_row_has_the_full_length_and_no_infinities(
        amount in 0i64..=10_000_000_000_000,
        card in proptest::option::of(stats()),
        customer in stats(),
        with_snapshot in any::<bool>(),
        at in 0i64..4_000_000_000_000,
    ) {
        let mut i = input();
        i.amount_minor = amount;
        i.occurred_at_ms = at;
        let snap = VelocitySnapshot { card, customer, ip: card, device: card, email: None };
        let v = ctx().compute(&i, with_snapshot.then_some(&snap));
        prop_assert_eq!(v.0.len(), shared::N_FEATURES);
        prop_assert!(v.0.iter().all(|x| !x.is_infinite()), "{:?}", v);
        let hour = get(&v, "hour_of_day");
        prop_assert!((0.0..24.0).contains(&hour));
    }
}
