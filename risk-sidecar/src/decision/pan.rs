//! Spotting a full card number (PAN) anywhere in a request body, so it can be
//! refused before anything else reads, logs or stores it.
//!
//! Every string value and every object key is scanned, and every number. A card
//! number is a run of 13–19 digits passing the Luhn check, where a digit is any
//! Unicode decimal digit (`4`, `４`, `٤`, `𝟒` …) and groups of digits may be joined by
//! up to three separators (Unicode white space, dashes, `.`, `/`, `_`). A run is checked
//! whole and as every sequence of whole groups within it, so digits put before or after a
//! card number (`4242 4242 4242 4242 99`) do not hide it; a single group of more than 19
//! digits is no card number. Letters end a run: `x4242424242424242` holds one.
//!
//! The RFC 3339 timestamps the contract types (`occurred_at`,
//! `customer.account_created_at`, and a history's `labelled_at`) are not scanned when
//! they parse as such: a fraction of a second is no card number.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const MIN_DIGITS: usize = 13;
const MAX_DIGITS: usize = 19;
/// More separators than this in a row end a run.
const MAX_SEPARATORS: usize = 3;
/// Fields typed as timestamps, by name (at any depth: a history nests the request).
const TIMESTAMP_FIELDS: &[&str] = &["occurred_at", "account_created_at", "labelled_at"];

/// Whether an object key or string value at `path` (dotted, as the screen builds it)
/// is a typed timestamp: such a value is not scanned when it parses as RFC 3339.
fn is_timestamp_field(path: &str) -> bool {
    let name = path.rsplit('.').next().unwrap_or(path);
    TIMESTAMP_FIELDS.contains(&name)
}

/// Whether a string value at `path` holds a card number. The timestamp parse runs only
/// for a string that would otherwise count: almost none do.
pub(crate) fn string_is_pan(path: &str, s: &str) -> bool {
    contains_pan(s) && !(is_timestamp_field(path) && OffsetDateTime::parse(s, &Rfc3339).is_ok())
}

/// An integer's digits (of its magnitude). Fewer than 13 digits is no card number: no
/// formatting for the amounts and counts every request carries.
pub(crate) fn integer_is_pan(v: u64) -> bool {
    v >= 1_000_000_000_000 && contains_pan(&v.to_string())
}

/// A float's digits as written out in full (plain and exponent form).
pub(crate) fn float_is_pan(v: f64) -> bool {
    let Some(n) = serde_json::Number::from_f64(v) else {
        return false;
    };
    let v = v.abs();
    // Display may use an exponent; the integer part in full shows the digits.
    contains_pan(&n.to_string()) || (v < 1e20 && contains_pan(&format!("{:.0}", v.trunc())))
}

/// The value of a Unicode decimal digit. Decimal digits come in contiguous blocks of ten,
/// zero first (a Unicode stability guarantee); these are the zeros of Unicode 14's
/// `Nd` blocks (from Python's `unicodedata`).
fn digit_value(c: char) -> Option<u8> {
    const ZEROS: &[u32] = &[
        0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66, 0xDE6, 0xE50, 0xED0,
        0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90, 0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620,
        0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10, 0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0,
        0x112F0, 0x11450, 0x114D0, 0x11650, 0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60,
        0x16AC0, 0x16B50, 0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
    ];
    let c = c as u32;
    if c < 0x80 {
        return (0x30..=0x39).contains(&c).then(|| (c - 0x30) as u8);
    }
    let i = ZEROS.partition_point(|&zero| zero <= c).checked_sub(1)?;
    let offset = c - ZEROS[i];
    (offset < 10).then_some(offset as u8)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '-' | '.' | '/' | '_' | '\u{2010}'
                ..='\u{2015}'
                    | '\u{2212}'
                    | '\u{FE58}'
                    | '\u{FE63}'
                    | '\u{FF0D}'
                    | '\u{FF0E}'
                    | '\u{FF0F}'
                    | '\u{FF3F}'
        )
}

/// The digits of the current run: its groups, newest last, as many as a window that
/// ends at the next group could still use (fewer than 19 digits in all).
struct Run {
    digits: [u8; 2 * MAX_DIGITS],
    len: usize,
    groups: [u8; MAX_DIGITS],
    n_groups: usize,
}

impl Run {
    fn clear(&mut self) {
        self.len = 0;
        self.n_groups = 0;
    }

    /// Adds a finished group; whether some sequence of whole groups ending with it is a
    /// card number.
    fn push_group(&mut self, group: &[u8]) -> bool {
        self.digits[self.len..self.len + group.len()].copy_from_slice(group);
        self.len += group.len();
        self.groups[self.n_groups] = group.len() as u8;
        self.n_groups += 1;
        let mut window = 0;
        for g in (0..self.n_groups).rev() {
            window += usize::from(self.groups[g]);
            if window > MAX_DIGITS {
                break;
            }
            if window >= MIN_DIGITS && luhn(&self.digits[self.len - window..self.len]) {
                return true;
            }
        }
        // Drop the oldest groups no later window can reach.
        while self.len >= MAX_DIGITS {
            let oldest = usize::from(self.groups[0]);
            self.digits.copy_within(oldest..self.len, 0);
            self.len -= oldest;
            self.groups.copy_within(1..self.n_groups, 0);
            self.n_groups -= 1;
        }
        false
    }
}

/// Whether `s` holds a card number anywhere in it.
pub fn contains_pan(s: &str) -> bool {
    // Cheap rejection first: this runs on every string of every request.
    if s.len() < MIN_DIGITS {
        return false;
    }
    if s.is_ascii() && !ascii_run_of_13_digits(s.as_bytes()) {
        return false;
    }
    scan(s)
}

/// The full scan behind [`contains_pan`].
fn scan(s: &str) -> bool {
    let mut run = Run {
        digits: [0; 2 * MAX_DIGITS],
        len: 0,
        groups: [0; MAX_DIGITS],
        n_groups: 0,
    };
    let mut group = [0u8; MAX_DIGITS];
    let mut group_len = 0usize;
    // A group of more than 19 digits: no card number, and a wall between its neighbours.
    let mut too_long = false;
    let mut separators = 0usize;
    let end_group = |run: &mut Run, group: &[u8], too_long: &mut bool| -> bool {
        if *too_long {
            run.clear();
            *too_long = false;
            false
        } else {
            !group.is_empty() && run.push_group(group)
        }
    };
    for c in s.chars() {
        if let Some(d) = digit_value(c) {
            if group_len == 0 && separators > MAX_SEPARATORS {
                run.clear();
            }
            separators = 0;
            if group_len < MAX_DIGITS {
                group[group_len] = d;
                group_len += 1;
            } else {
                too_long = true;
            }
            continue;
        }
        if group_len > 0 || too_long {
            if end_group(&mut run, &group[..group_len], &mut too_long) {
                return true;
            }
            group_len = 0;
        }
        if is_separator(c) {
            separators += 1;
        } else {
            run.clear();
            separators = 0;
        }
    }
    group_len > 0 && end_group(&mut run, &group[..group_len], &mut too_long)
}

/// Whether some stretch of only digits and separators holds 13 digits: a necessary
/// condition for a card number in ASCII text (a letter or other sign ends a run), checked
/// a byte at a time before the full scan. Timestamps, ids and user agents stop here.
fn ascii_run_of_13_digits(s: &[u8]) -> bool {
    let mut digits = 0;
    for &b in s {
        if b.is_ascii_digit() {
            digits += 1;
            if digits >= MIN_DIGITS {
                return true;
            }
        } else if !(b.is_ascii_whitespace() || b == 0x0b || matches!(b, b'-' | b'.' | b'/' | b'_')) {
            digits = 0;
        }
    }
    false
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests;
