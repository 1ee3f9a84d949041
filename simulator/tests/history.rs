//! The simulator's output is a valid, reproducible, labelled history.

use std::collections::BTreeMap;

use risk_sidecar::decision::input::DecisionInput;
use shared::{HistoryRecord, Label};
use simulator::{Params, simulate};

fn shipped() -> Params {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/params.yaml")).expect("params.yaml");
    Params::from_yaml(&text).expect("shipped parameters are valid")
}

fn small() -> Params {
    let mut p = shipped();
    p.customers.initial = 2_000;
    p.weeks = 2;
    p
}

fn ms(record: &HistoryRecord) -> i64 {
    let at = record
        .request
        .occurred_at
        .as_deref()
        .expect("occurred_at is always set");
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

#[test]
fn the_same_seed_gives_the_same_history_and_another_seed_another() {
    let p = small();
    let a = simulate(&p, 7).expect("runs");
    assert_eq!(a, simulate(&p, 7).expect("runs"));
    assert_ne!(a, simulate(&p, 8).expect("runs"));
}

#[test]
fn records_are_in_time_order_with_ids_in_that_order_and_pass_the_sidecars_validation() {
    let history = simulate(&small(), 3).expect("runs");
    for (n, pair) in history.windows(2).enumerate() {
        assert!(ms(&pair[0]) <= ms(&pair[1]), "out of order at {n}");
    }
    for (n, record) in history.iter().enumerate() {
        assert_eq!(record.request.transaction_id, format!("sim-3-{n}"));
        assert!(record.label.is_some());
        // The history format is the contract's request: the sidecar must accept every line.
        let line = serde_json::to_vec(record).expect("serialises");
        DecisionInput::parse(&line, ms(record)).unwrap_or_else(|e| panic!("record {n} refused: {e:?}"));
    }
}

#[test]
fn the_shipped_parameters_give_one_to_two_percent_fraud_with_every_scenario() {
    let history = simulate(&shipped(), 42).expect("runs");
    let fraud = history.iter().filter(|r| r.label == Some(Label::Fraud)).count();
    let share = fraud as f64 / history.len() as f64;
    assert!((0.01..=0.02).contains(&share), "fraud share {share}");
    let mut scenarios: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &history {
        *scenarios.entry(r.scenario.as_deref().unwrap_or("-")).or_default() += 1;
    }
    for s in [
        "card_testing",
        "stolen_card_spree",
        "account_takeover",
        "bin_attack",
        "bust_out",
        "repeat_fraudster",
        "look_alike",
    ] {
        assert!(scenarios.get(s).is_some_and(|n| *n > 0), "{s} missing: {scenarios:?}");
    }
}

#[test]
fn card_testing_is_many_cards_on_one_device_within_minutes() {
    let history = simulate(&small(), 11).expect("runs");
    let mut by_device: BTreeMap<String, Vec<&HistoryRecord>> = BTreeMap::new();
    for r in history.iter().filter(|r| r.scenario.as_deref() == Some("card_testing")) {
        let device = r.request.device.as_ref().and_then(|d| d.id.clone()).expect("device");
        by_device.entry(device).or_default().push(r);
    }
    assert!(!by_device.is_empty());
    for (device, records) in by_device {
        let cards: std::collections::BTreeSet<_> = records
            .iter()
            .map(|r| r.request.payment.card_fingerprint.clone())
            .collect();
        let span = ms(records[records.len() - 1]) - ms(records[0]);
        assert!(cards.len() >= 20, "{device}: {} cards", cards.len());
        assert!(span <= 30 * 60_000, "{device}: spread over {span} ms");
        assert!(records.iter().all(|r| r.request.amount.value_minor <= 500));
    }
}

#[test]
fn a_broken_parameter_file_is_refused() {
    assert!(Params::from_yaml("weeks: 0").is_err());
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/params.yaml")).expect("read");
    assert!(Params::from_yaml(&text.replace("weeks: 6", "weeks: 0")).is_err());
    assert!(
        Params::from_yaml(&format!("{text}\nsurprise: 1\n")).is_err(),
        "unknown keys are refused"
    );
}

#[test]
fn most_purchases_on_an_accounts_first_day_are_newcomers_buying_at_sign_up() {
    // A model learns "first day = fraud" if newcomers never buy on their first day.
    let history = simulate(&small(), 7).expect("runs");
    let first_day = |r: &&HistoryRecord| {
        r.request.customer.account_created_at.as_deref().is_some_and(|created| {
            let created =
                time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339).expect("RFC 3339");
            ms(r) - (created.unix_timestamp_nanos() / 1_000_000) as i64 <= 86_400_000
        })
    };
    let young: Vec<&HistoryRecord> = history.iter().filter(first_day).collect();
    let legit = young.iter().filter(|r| r.label == Some(Label::Legitimate)).count();
    assert!(
        legit * 2 > young.len(),
        "{legit} legitimate of {} first-day purchases",
        young.len()
    );
}

#[test]
fn outcomes_and_chargebacks_follow_with_realistic_delays() {
    let history = simulate(&small(), 11).expect("runs");
    let at = |s: &str| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .expect("time")
    };
    let mut chargebacks = 0;
    let mut challenges = 0;
    let mut testing_declined = 0;
    let mut testing = 0;
    for r in &history {
        let t = ms(r);
        assert!(!r.outcomes.is_empty(), "every payment has an outcome");
        for o in &r.outcomes {
            assert!(at(&o.occurred_at) > t, "outcomes follow the payment");
        }
        if r.scenario.as_deref() == Some("card_testing") {
            testing += 1;
            testing_declined += usize::from(r.outcomes[0].status == shared::OutcomeStatus::Declined);
        }
        let labelled = r.labelled_at.as_deref().expect("every payment is known in time");
        let after_s = (at(labelled) - t) / 1000;
        match r.label_source {
            None => assert_eq!(after_s, 120 * 86_400, "settled once the chargeback window closed"),
            Some(shared::LabelSource::ChallengePassed) => {
                challenges += 1;
                assert_eq!(r.label, Some(shared::Label::Legitimate));
                assert!(after_s <= 120, "a challenge's label comes at once");
            }
            Some(shared::LabelSource::ChallengeFailed) => {
                challenges += 1;
                assert_eq!(r.label, Some(shared::Label::Fraud));
                assert!(after_s <= 120, "a challenge's label comes at once");
            }
            Some(source) => assert_eq!(source, shared::LabelSource::Chargeback),
        }
        if r.label_source == Some(shared::LabelSource::Chargeback) {
            chargebacks += 1;
            assert_eq!(r.label, Some(shared::Label::Fraud), "only fraud is charged back");
            let days = (at(labelled) - t) as f64 / 86_400_000.0;
            assert!(
                (1.0..=60.0).contains(&days),
                "a chargeback {days} days after the payment"
            );
            let disputed = r
                .outcomes
                .iter()
                .find(|o| o.status == shared::OutcomeStatus::Disputed)
                .expect("disputed");
            assert!(at(&disputed.occurred_at) <= at(labelled));
            assert!(
                r.outcomes.iter().all(|o| o.status != shared::OutcomeStatus::Declined),
                "a declined payment is never charged back"
            );
        }
    }
    assert!(chargebacks > 0 && testing > 0 && challenges > 0);
    let share = testing_declined as f64 / testing as f64;
    assert!((0.5..0.9).contains(&share), "card testing mostly declined: {share}");
}

#[test]
fn the_annotations_leave_the_traffic_as_it_was() {
    let mut without = small();
    without.feedback.chargeback_share = 0.0;
    without.feedback.card_testing_decline_share = 0.0;
    without.feedback.legit_decline_share = 0.0;
    without.feedback.challenge_share = 0.0;
    let a = simulate(&small(), 5).expect("runs");
    let b = simulate(&without, 5).expect("runs");
    let requests = |h: &[HistoryRecord]| h.iter().map(|r| r.request.clone()).collect::<Vec<_>>();
    assert_eq!(requests(&a), requests(&b), "the same requests, whatever is annotated");
}
