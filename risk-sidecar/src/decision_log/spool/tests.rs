use super::*;

fn payload(tx: &str, at: i64) -> Vec<u8> {
    format!(
        r#"{{"transaction_id":"{tx}","decided_at_ms":{at},"pad":"{}"}}"#,
        "x".repeat(40)
    )
    .into_bytes()
}

fn append(spool: &mut Spool, txs: &[(&str, i64)]) -> usize {
    let payloads: Vec<Vec<u8>> = txs.iter().map(|(tx, at)| payload(tx, *at)).collect();
    let records: Vec<Record<'_>> = txs
        .iter()
        .zip(&payloads)
        .map(|((tx, at), p)| Record {
            transaction_id: tx,
            decided_at_ms: *at,
            payload: p,
        })
        .collect();
    spool.append(&records).expect("append")
}

fn open(dir: &Path, max: u64) -> (Spool, Recovered, SpooledIds) {
    let ids = SpooledIds::default();
    let (spool, recovered) = Spool::open(dir, max, Arc::clone(&ids)).expect("open");
    (spool, recovered, ids)
}

#[test]
fn records_survive_a_reopen_in_order() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut spool, recovered, _) = open(dir.path(), 1 << 20);
    assert_eq!(recovered, Recovered::default());
    assert_eq!(append(&mut spool, &[("a", 1), ("b", 2)]), 2);
    assert_eq!(append(&mut spool, &[("c", 3)]), 1);
    drop(spool);
    let (spool, recovered, ids) = open(dir.path(), 1 << 20);
    assert_eq!(recovered.records, 3);
    assert_eq!(spool.oldest_ms(), Some(1));
    let read: Vec<SpooledHead> = spool
        .peek(10)
        .expect("peek")
        .iter()
        .map(|(p, _)| serde_json::from_slice(p).expect("json"))
        .collect();
    let txs: Vec<&str> = read.iter().map(|h| h.transaction_id.as_str()).collect();
    assert_eq!(txs, ["a", "b", "c"]);
    assert!(ids.lock().contains("b"));
}

#[test]
fn a_torn_last_record_is_cut_off_and_the_rest_kept() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut spool, _, _) = open(dir.path(), 1 << 20);
    append(&mut spool, &[("a", 1), ("b", 2)]);
    let path = spool.path().to_owned();
    drop(spool);
    let whole = std::fs::metadata(&path).expect("meta").len();
    // A crash in the middle of the next record's write: its header and half its payload.
    let next = payload("c", 3);
    let mut torn = Vec::new();
    torn.extend_from_slice(&(next.len() as u32).to_le_bytes());
    torn.extend_from_slice(&crc32fast::hash(&next).to_le_bytes());
    torn.extend_from_slice(&next[..next.len() / 2]);
    OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(&torn))
        .expect("tear");
    let (mut spool, recovered, ids) = open(dir.path(), 1 << 20);
    assert_eq!(recovered.records, 2);
    assert_eq!(recovered.torn_bytes, torn.len() as u64);
    assert_eq!(std::fs::metadata(&path).expect("meta").len(), whole);
    assert!(!ids.lock().contains("c"));
    // Appends go on after the cut, and read back whole.
    append(&mut spool, &[("d", 4)]);
    assert_eq!(spool.peek(10).expect("peek").len(), 3);
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut spool, _, _) = open(dir.path(), 1 << 20);
    append(&mut spool, &[("a", 1), ("b", 2)]);
    let path = spool.path().to_owned();
    drop(spool);
    let mut bytes = std::fs::read(&path).expect("read");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x20;
    std::fs::write(&path, &bytes).expect("write");
    let (_, recovered, _) = open(dir.path(), 1 << 20);
    assert_eq!(recovered.records, 1);
    assert!(recovered.torn_bytes > 0);
}

#[test]
fn the_size_bound_holds_and_says_what_did_not_fit() {
    let dir = tempfile::tempdir().expect("dir");
    let one = HEADER + payload("a", 1).len() as u64;
    let (mut spool, _, _) = open(dir.path(), one * 3 + 1);
    assert_eq!(append(&mut spool, &[("a", 1), ("b", 2)]), 2);
    assert_eq!(append(&mut spool, &[("c", 3), ("d", 4)]), 1, "only one more fits");
    assert_eq!(append(&mut spool, &[("e", 5)]), 0);
    assert!(spool.len_bytes() <= one * 3 + 1);
    assert_eq!(std::fs::metadata(spool.path()).expect("meta").len(), spool.len_bytes());
}

#[test]
fn replaying_everything_empties_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let (mut spool, _, ids) = open(dir.path(), 1 << 20);
    append(&mut spool, &[("a", 1), ("b", 2), ("c", 3)]);
    let first_two = spool.peek(2).expect("peek");
    spool.advance(first_two[1].1).expect("advance");
    assert!(!spool.is_empty());
    assert_eq!(spool.oldest_ms(), Some(3));
    let rest = spool.peek(10).expect("peek");
    assert_eq!(rest.len(), 1);
    spool.advance(rest[0].1).expect("advance");
    assert!(spool.is_empty());
    assert_eq!(std::fs::metadata(spool.path()).expect("meta").len(), 0);
    assert!(ids.lock().is_empty());
    assert_eq!(spool.oldest_ms(), None);
}

#[test]
fn a_second_process_on_the_same_spool_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let (_first, _, _) = open(dir.path(), 1 << 20);
    let second = Spool::open(dir.path(), 1 << 20, SpooledIds::default());
    let err = second.err().expect("locked");
    assert!(err.to_string().contains("own spool_dir"), "{err}");
}

#[test]
fn while_a_replay_catches_up_new_rows_still_fit_under_twice_the_bound() {
    let dir = tempfile::tempdir().expect("dir");
    let one = HEADER + payload("a", 1).len() as u64;
    let (mut spool, _, _) = open(dir.path(), one * 2);
    assert_eq!(append(&mut spool, &[("a", 1), ("b", 2)]), 2);
    assert_eq!(append(&mut spool, &[("c", 3)]), 0, "full");
    let first = spool.peek(1).expect("peek");
    spool.advance(first[0].1).expect("advance");
    assert_eq!(append(&mut spool, &[("c", 3)]), 1, "one replayed, one more fits");
    assert_eq!(append(&mut spool, &[("d", 4)]), 0);
    assert!(spool.len_bytes() <= 4 * one);
}
