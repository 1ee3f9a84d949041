use super::*;

#[test]
fn user_agents_lose_long_digit_runs_and_keep_the_rest() {
    let chrome =
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36";
    assert_eq!(user_agent(chrome).as_deref(), Some(chrome));
    assert_eq!(user_agent("4242424242424242").as_deref(), Some("################"));
    assert_eq!(
        user_agent("x 4242-4242-4242-4242 y").as_deref(),
        Some("x ####-####-####-#### y")
    );
    assert_eq!(
        user_agent("4242.4242.4242.4242").as_deref(),
        Some("####.####.####.####")
    );
    assert_eq!(
        user_agent("ab\u{ff14}\u{ff12}cd").as_deref(),
        Some("abcd"),
        "non-ASCII dropped"
    );
    assert_eq!(user_agent("\u{7}"), None);
    assert_eq!(user_agent(&"a".repeat(600)).map(|s| s.len()), Some(512));
}

#[test]
fn device_ids_that_break_the_contract_or_hold_a_card_number_are_dropped() {
    assert_eq!(
        device_id("dev_01jd3k6q9v7x2b4n8m5r0t1w2y").as_deref(),
        Some("dev_01jd3k6q9v7x2b4n8m5r0t1w2y")
    );
    for bad in [
        "",
        "4242424242424242",
        "x4242424242424242",
        "4242-4242-4242-4242",
        "a b",
        "é",
    ] {
        assert_eq!(device_id(bad), None, "{bad:?}");
    }
    assert_eq!(device_id(&"d".repeat(129)), None);
    assert!(device_id(&"d".repeat(128)).is_some());
    assert!(device_id("123456789012").is_some(), "twelve digits are no card number");
}
