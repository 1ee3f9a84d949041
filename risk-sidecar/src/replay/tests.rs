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
