use super::*;
use proptest::prelude::*;
use shared::feature_index;

const SHIPPED: &str = include_str!("../../../configuration/policy.yaml");

fn policy(rules: &str) -> Policy {
    Policy::from_yaml(&format!(
        "version: \"t\"\nthresholds: {{challenge: 0.5, block: 0.9}}\nrules:\n{rules}"
    ))
    .expect("valid policy")
}

fn features(pairs: &[(&str, f32)]) -> FeatureVector {
    let mut v = FeatureVector([0.0; N_FEATURES]);
    for (name, value) in pairs {
        v.0[feature_index(name).expect(name)] = *value;
    }
    v
}

const RULES: &str = r#"
  - {id: b, action: block, when: "card_count_1m >= 20.0", code: CARD_VELOCITY_1M, message: "card used {card_count_1m} times"}
  - {id: a, action: allow, when: "account_age_days >= 365.0", code: TRUSTED_CUSTOMER, message: "old account"}
  - {id: c, action: challenge, when: "card_count_1m >= 5.0", code: CARD_VELOCITY_1M, message: "card used {card_count_1m} times"}
  - {id: v, action: challenge, when: "!velocity_available && amount_ref >= 500.0", code: VELOCITY_UNAVAILABLE_HIGH_AMOUNT, message: "blind"}
"#;

#[test]
fn precedence_is_block_then_allow_then_challenge_then_score() {
    let p = policy(RULES);
    let cases = [
        // (features, score, expected decision, expected first reason)
        (
            vec![("card_count_1m", 25.0), ("account_age_days", 999.0)],
            0.0,
            Decision::Block,
            Some("CARD_VELOCITY_1M"),
        ),
        (
            vec![("card_count_1m", 6.0), ("account_age_days", 999.0)],
            0.95,
            Decision::Allow,
            Some("TRUSTED_CUSTOMER"),
        ),
        (
            vec![("card_count_1m", 6.0)],
            0.1,
            Decision::Challenge,
            Some("CARD_VELOCITY_1M"),
        ),
        (
            vec![("card_count_1m", 6.0)],
            0.95,
            Decision::Block,
            Some("MODEL_VERY_HIGH_RISK"),
        ),
        (vec![], 0.6, Decision::Challenge, Some("MODEL_HIGH_RISK")),
        (vec![], 0.49, Decision::Allow, None),
    ];
    for (pairs, score, decision, first) in cases {
        let verdict = p.decide(score, &features(&pairs), true, None);
        assert_eq!(verdict.decision, decision, "{pairs:?} at {score}");
        assert_eq!(
            verdict.reasons.first().map(|r| r.code.as_str()),
            first,
            "{pairs:?} at {score}"
        );
    }
}

#[test]
fn messages_render_feature_values() {
    let verdict = policy(RULES).decide(0.0, &features(&[("card_count_1m", 7.0)]), true, None);
    assert_eq!(verdict.reasons[0].message, "card used 7 times");
    assert_eq!(verdict.reasons[0].source, shared::ReasonSource::Velocity);
}

#[test]
fn unknown_velocity_silences_velocity_rules_and_the_policy_decides_the_rest() {
    let p = policy(RULES);
    let mut v = features(&[("amount_ref", 800.0)]);
    v.0[feature_index("card_count_1m").expect("known")] = f32::NAN;
    let verdict = p.decide(0.1, &v, false, None);
    assert_eq!(verdict.decision, Decision::Challenge);
    assert_eq!(verdict.reasons[0].code, "VELOCITY_UNAVAILABLE_HIGH_AMOUNT");
    let low = features(&[("amount_ref", 20.0)]);
    assert_eq!(
        p.decide(0.1, &low, false, None).decision,
        Decision::Allow,
        "fail open below the amount"
    );
}

#[test]
fn bad_rules_are_refused_at_load_with_the_rule_named() {
    let cases = [
        (
            "{id: x, action: block, when: 'nope >= 1.0', code: HIGH_AMOUNT, message: m}",
            "unknown variable nope",
        ),
        (
            "{id: x, action: block, when: 'amount_ref >=', code: HIGH_AMOUNT, message: m}",
            "does not compile",
        ),
        (
            "{id: x, action: block, when: 'amount_ref + 1.0', code: HIGH_AMOUNT, message: m}",
            "not a boolean",
        ),
        (
            "{id: x, action: block, when: 'amount_ref > \"a\"', code: HIGH_AMOUNT, message: m}",
            "fails to evaluate",
        ),
        (
            "{id: x, action: block, when: 'amount_ref >= 0 && 1 / 0 > 1', code: HIGH_AMOUNT, message: m}",
            "fails to evaluate",
        ),
        (
            "{id: x, action: block, when: 'true', code: MADE_UP, message: m}",
            "not a documented reason code",
        ),
        (
            "{id: x, action: block, when: 'true', code: HIGH_AMOUNT, message: '{nope}'}",
            "unknown feature nope",
        ),
        (
            "{id: x, action: maybe, when: 'true', code: HIGH_AMOUNT, message: m}",
            "unknown variant",
        ),
    ];
    for (rule, expected) in cases {
        let text = format!("version: '1'\nthresholds: {{challenge: 0.5, block: 0.9}}\nrules:\n  - {rule}");
        let err = Policy::from_yaml(&text)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(expected), "{rule}: got {err:?}");
    }
    let inverted = "version: '1'\nthresholds: {challenge: 0.9, block: 0.5}";
    assert!(matches!(Policy::from_yaml(inverted), Err(PolicyError::Thresholds)));
}

#[test]
fn the_shipped_policy_loads() {
    let p = Policy::from_yaml(SHIPPED).expect("shipped policy is valid");
    assert_eq!(p.version, "2");
    let burst = p.decide(0.0, &features(&[("card_count_1m", 10.0)]), true, None);
    assert_eq!(burst.decision, Decision::Challenge);
    // A run of declines: a card's is challenged, a device's (many cards) blocked.
    let card_run = p.decide(0.0, &features(&[("card_decline_count_1h", 3.0)]), true, None);
    assert_eq!(card_run.decision, Decision::Challenge);
    assert_eq!(card_run.reasons[0].code, ReasonCode::Declines1h.as_str());
    let device_run = p.decide(0.0, &features(&[("device_decline_count_1h", 5.0)]), true, None);
    assert_eq!(device_run.decision, Decision::Block);
}

proptest! {
    #[test]
    fn a_higher_score_never_yields_a_milder_decision(a in 0.0f32..=1.0, b in 0.0f32..=1.0, count in 0.0f32..30.0) {
        let p = Policy::from_yaml(SHIPPED).expect("valid");
        let v = features(&[("card_count_1m", count)]);
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(p.decide(lo, &v, true, None).decision <= p.decide(hi, &v, true, None).decision);
    }

    #[test]
    fn challenge_and_block_always_carry_a_reason(score in 0.0f32..=1.0, count in 0.0f32..30.0, cards in 0.0f32..12.0) {
        let p = Policy::from_yaml(SHIPPED).expect("valid");
        let v = features(&[("card_count_1m", count), ("device_distinct_cards_24h", cards)]);
        let verdict = p.decide(score, &v, true, None);
        prop_assert!(verdict.decision == Decision::Allow || !verdict.reasons.is_empty());
    }
}

#[test]
fn the_model_cards_bands_apply_unless_the_policy_sets_its_own() {
    let own = policy("");
    let bare = Policy::from_yaml("version: '2'").expect("a policy without thresholds or rules");
    let card = Some(Bands {
        challenge: 0.02,
        block: 0.06,
    });
    let v = features(&[]);
    assert_eq!(
        bare.decide(0.03, &v, true, card).decision,
        Decision::Challenge,
        "card bands"
    );
    assert_eq!(bare.decide(0.07, &v, true, card).decision, Decision::Block);
    assert_eq!(
        bare.decide(0.6, &v, true, None).decision,
        Decision::Challenge,
        "defaults 0.5 / 0.9"
    );
    assert_eq!(
        own.decide(0.07, &v, true, card).decision,
        Decision::Allow,
        "the policy's own 0.5 / 0.9 win"
    );
}
