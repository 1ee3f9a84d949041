use super::*;
use shared::feature_index;

fn line(tx: &str, at: &str, card: &str) -> String {
    format!(
        r#"{{"transaction_id":"{tx}","occurred_at":"{at}","amount":{{"value_minor":1000,"currency":"EUR"}},
           "customer":{{"id":"c1"}},"payment":{{"card_fingerprint":"{card}"}},"label":"fraud","scenario":"s"}}"#
    )
    .replace('\n', "")
}

fn replay(lines: &[String]) -> Result<String, ReplayError> {
    let settings = Settings::load_with(Default::default()).expect("defaults");
    let mut out = Vec::new();
    Replayer::new(&settings).run(lines.join("\n").as_bytes(), &mut out)?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

#[test]
fn rows_carry_label_scenario_and_counts_that_include_the_transaction() {
    let lines = [
        line("a", "2026-01-05T10:00:00Z", "fp1"),
        line("b", "2026-01-05T10:00:10Z", "fp1"),
        line("c", "2026-01-05T10:00:20.5Z", "fp1"),
    ];
    let table = replay(&lines).expect("replays");
    let rows: Vec<Vec<&str>> = table.lines().map(|l| l.split(',').collect()).collect();
    let col = 4 + feature_index("card_count_1m").expect("known");
    assert_eq!(rows[0][col], "card_count_1m");
    assert_eq!(rows.iter().skip(1).map(|r| r[col]).collect::<Vec<_>>(), ["1", "2", "3"]);
    assert_eq!(&rows[3][..4], ["c", "1767607220500", "1", "s"]);
}

#[test]
fn a_bad_history_is_refused_with_its_line_number() {
    let out_of_order = [
        line("a", "2026-01-05T10:00:00Z", "fp"),
        line("b", "2026-01-05T09:00:00Z", "fp"),
    ];
    assert!(matches!(
        replay(&out_of_order),
        Err(ReplayError::OutOfOrder { line: 2 })
    ));
    let pan = [line("a", "2026-01-05T10:00:00Z", "4111111111111111")];
    assert!(matches!(
        replay(&pan),
        Err(ReplayError::Input {
            line: 1,
            error: InputError::Pan { .. }
        })
    ));
    let untimed = [line("a", "2026-01-05T10:00:00Z", "fp").replace(r#""occurred_at":"2026-01-05T10:00:00Z","#, "")];
    assert!(matches!(replay(&untimed), Err(ReplayError::Record { line: 1, .. })));
    assert!(matches!(
        replay(&["{".to_owned()]),
        Err(ReplayError::Record { line: 1, .. })
    ));
}

fn labelled(tx: &str, at: &str, card: &str, label: &str, extra: &str) -> String {
    line(tx, at, card).replace(r#""label":"fraud""#, &format!(r#""label":"{label}"{extra}"#))
}

fn column(table: &str, name: &str) -> Vec<String> {
    let col = 4 + feature_index(name).expect("known");
    table
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(col).expect("column").to_owned())
        .collect()
}

#[test]
fn a_label_counts_only_from_when_it_became_known() {
    let lines = [
        // Fraud, charged back on the 7th; a legitimate one, labelled after the default delay.
        labelled(
            "a",
            "2026-01-05T10:00:00Z",
            "fp",
            "fraud",
            r#","labelled_at":"2026-01-07T00:00:00Z""#,
        ),
        labelled("b", "2026-01-05T11:00:00Z", "fp", "legitimate", ""),
        line("c", "2026-01-06T10:00:00Z", "fp"),
        line("d", "2026-01-07T00:00:00Z", "fp"),
        line("e", "2026-01-07T00:00:00.001Z", "fp"),
        // Beyond a's 7 days of transaction time, within its 30.
        line("f", "2026-01-13T10:00:01Z", "fp"),
    ];
    let table = replay(&lines).expect("replays");
    // At d's instant the label is not yet known: only what came before counts.
    assert_eq!(column(&table, "card_fraud_count_7d"), ["0", "0", "0", "0", "1", "0"]);
    // By f, c's own label (no labelled_at: 7 days later) is known too, just: c is
    // outside f's 7 days, inside its 30.
    assert_eq!(column(&table, "card_fraud_count_30d"), ["0", "0", "0", "0", "1", "2"]);
    // Customer c1 is on every line too; the share needs a device or an IP.
    assert_eq!(column(&table, "customer_fraud_count_30d")[4], "1");
}

#[test]
fn declines_count_from_their_time_for_an_hour_and_a_day() {
    let declined = r#","outcomes":[{"status":"declined","code":"card_declined","occurred_at":"2026-01-05T10:00:01Z"}]"#;
    let lines = [
        labelled("a", "2026-01-05T10:00:00Z", "fp", "fraud", declined),
        line("b", "2026-01-05T10:00:01Z", "fp"),
        line("c", "2026-01-05T10:30:00Z", "fp"),
        line("d", "2026-01-05T12:00:00Z", "fp"),
        line("e", "2026-01-06T11:00:00Z", "fp"),
    ];
    let table = replay(&lines).expect("replays");
    assert_eq!(column(&table, "card_decline_count_1h"), ["0", "0", "1", "0", "0"]);
    assert_eq!(column(&table, "card_decline_count_24h"), ["0", "0", "1", "1", "0"]);
    let bad = [labelled(
        "a",
        "2026-01-05T10:00:00Z",
        "fp",
        "fraud",
        r#","labelled_at":"soon""#,
    )];
    assert!(matches!(replay(&bad), Err(ReplayError::Record { line: 1, .. })));
}
