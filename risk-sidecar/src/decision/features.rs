//! Pure: a parsed request plus the velocity counters become the model's input row,
//! in the order of `shared::FEATURE_NAMES`. Training replays histories through this
//! same function, so serving and training cannot disagree.

use std::collections::{BTreeMap, HashSet};

use shared::{N_FEATURES, PaymentMethod};

use super::input::DecisionInput;
use crate::settings::CurrencyRate;
use crate::store::{EntityStats, LabelStats, Observation, TransactionEntities, VelocitySnapshot};

const DISPOSABLE_DOMAINS: &str = include_str!("../../data/disposable_domains.txt");
const MS_PER_DAY: f64 = 86_400_000.0;

/// The model's input row. NaN marks a value that is unknown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureVector(pub [f32; N_FEATURES]);

/// A feature value for a message: whole numbers without decimals, others with two.
pub fn display_value(v: f32) -> String {
    if v.is_nan() {
        "unknown".to_owned()
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

impl FeatureVector {
    /// Name to value, unknown (NaN) as `None`.
    pub fn by_name(&self) -> std::collections::BTreeMap<String, Option<f64>> {
        shared::FEATURE_NAMES
            .iter()
            .zip(self.0)
            .map(|(name, v)| ((*name).to_owned(), (!v.is_nan()).then_some(f64::from(v))))
            .collect()
    }
}

/// Everything features need besides the request and the counters, built once.
pub struct FeatureContext {
    rates: BTreeMap<[u8; 3], CurrencyRate>,
    reference_exponent: u8,
    disposable: HashSet<&'static str>,
    /// Read the label and decline counters (`decision.label_counters`).
    label_counters: bool,
    email_keying: EmailKeying,
}

/// How an e-mail address is keyed in the label counters.
pub enum EmailKeying {
    /// By the decision log's keyed hash, which the log row carries: a label finds the
    /// same key, and the address never reaches Redis.
    Hashed(Vec<u8>),
    /// By the address itself: an offline replay, in process memory only.
    Plain,
    /// An exported history's address is `<keyed hash>@<domain>` (`make
    /// export-history`): its key is the hash, as when it was decided.
    Exported,
    /// Not at all: without a decision log no label can arrive, so there is nothing to
    /// read (the counts are 0, as they would be).
    Unkeyed,
}

// === impl FeatureContext ===

impl FeatureContext {
    pub fn new(rates: &BTreeMap<String, CurrencyRate>, reference: &str) -> FeatureContext {
        let rates: BTreeMap<[u8; 3], CurrencyRate> = rates
            .iter()
            .filter_map(|(code, r)| Some((<[u8; 3]>::try_from(code.as_bytes()).ok()?, *r)))
            .collect();
        let reference_exponent = <[u8; 3]>::try_from(reference.as_bytes())
            .ok()
            .and_then(|c| rates.get(&c))
            .map_or(2, |r| r.exponent);
        let disposable = DISPOSABLE_DOMAINS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect();
        FeatureContext {
            rates,
            reference_exponent,
            disposable,
            label_counters: true,
            email_keying: EmailKeying::Plain,
        }
    }

    /// Label counters on or off, and how addresses are keyed in them.
    pub fn with_labels(mut self, label_counters: bool, email_keying: EmailKeying) -> FeatureContext {
        self.label_counters = label_counters;
        self.email_keying = email_keying;
        self
    }

    /// The key of the request's e-mail address in the label counters.
    pub fn email_key(&self, input: &DecisionInput) -> Option<String> {
        let email = input.record.email.as_deref()?;
        match &self.email_keying {
            EmailKeying::Hashed(key) => Some(crate::decision_log::entry::email_hash(key, email)),
            EmailKeying::Plain => Some(email.to_owned()),
            // Anything else (an older export's shortened hash) would be a key serving
            // never reads: not keyed.
            EmailKeying::Exported => email
                .split_once('@')
                .map(|(hash, _)| hash)
                .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned),
            EmailKeying::Unkeyed => None,
        }
    }

    /// The entities a label or a decline of this request's transaction counts for.
    pub fn entities<'a>(&self, input: &'a DecisionInput, email_key: Option<&'a str>) -> TransactionEntities<'a> {
        TransactionEntities {
            card: input.card_fingerprint.as_deref(),
            customer: &input.customer_id,
            ip: input.ip_key.as_deref(),
            device: input.device_id.as_deref(),
            email: email_key,
        }
    }

    /// The amount in reference-currency minor units; `None` for a currency without a rate.
    pub fn to_reference_minor(&self, amount_minor: i64, currency: [u8; 3]) -> Option<i64> {
        let rate = self.rates.get(&currency)?;
        let major = amount_minor as f64 / 10f64.powi(i32::from(rate.exponent));
        Some((major * rate.rate * 10f64.powi(i32::from(self.reference_exponent))).round() as i64)
    }

    fn to_major(&self, reference_minor: i64) -> f64 {
        reference_minor as f64 / 10f64.powi(i32::from(self.reference_exponent))
    }

    /// What the velocity counters see of a request (`email_key` from `email_key`).
    /// Serving and replay both call this, so training features are counted exactly as
    /// live ones.
    pub fn observation<'a>(&self, input: &'a DecisionInput, email_key: Option<&'a str>) -> Observation<'a> {
        Observation {
            transaction_id: &input.transaction_id,
            at_ms: input.occurred_at_ms,
            amount_ref_minor: self.to_reference_minor(input.amount_minor, input.currency),
            card: input.card_fingerprint.as_deref(),
            customer: &input.customer_id,
            ip: input.ip_key.as_deref(),
            device: input.device_id.as_deref(),
            email: email_key,
            labels: self.label_counters,
            reservation: None,
            deadline: None,
        }
    }

    /// The domain or any parent of it is on the shipped list.
    pub fn is_disposable(&self, domain: &str) -> bool {
        let mut d = domain;
        loop {
            if self.disposable.contains(d) {
                return true;
            }
            match d.split_once('.') {
                Some((_, parent)) if parent.contains('.') => d = parent,
                _ => return false,
            }
        }
    }

    /// The feature row. `snapshot` is `None` when the velocity store was unavailable.
    pub fn compute(&self, input: &DecisionInput, snapshot: Option<&VelocitySnapshot>) -> FeatureVector {
        let amount_minor = self.to_reference_minor(input.amount_minor, input.currency);
        let amount = amount_minor.map_or(f64::NAN, |a| self.to_major(a));
        let at = input.occurred_at_ms;
        let card = snapshot.and_then(|s| s.card.as_ref());
        let customer = snapshot.map(|s| &s.customer);
        let ip = snapshot.and_then(|s| s.ip.as_ref());
        let device = snapshot.and_then(|s| s.device.as_ref());

        let count = |e: Option<&EntityStats>, w: usize| e.map_or(f64::NAN, |e| f64::from(e.counts[w]));
        let linked = |e: Option<&EntityStats>| e.map_or(f64::NAN, |e| f64::from(e.linked_24h));
        let sum = |e: Option<&EntityStats>, w: usize| e.map_or(f64::NAN, |e| self.to_major(e.amount_sums[w]));
        let mean = |e: Option<&EntityStats>, w: usize| {
            e.filter(|e| e.amount_n[w] > 0)
                .map_or(f64::NAN, |e| self.to_major(e.amount_sums[w]) / f64::from(e.amount_n[w]))
        };
        let age_s = |e: Option<&EntityStats>| e.map_or(f64::NAN, |e| ((at - e.first_seen_ms).max(0) as f64) / 1000.0);
        let ne = |a: Option<[u8; 2]>, b: Option<[u8; 2]>| match (a, b) {
            (Some(a), Some(b)) => f64::from(u8::from(a != b)),
            _ => f64::NAN,
        };
        // The customer's usual spend, without this transaction: the mean of the others.
        let to_usual = customer
            .zip(amount_minor)
            .filter(|(c, _)| c.amount_n[2] > 1)
            .map(|(c, a)| self.to_major(c.amount_sums[2] - a) / f64::from(c.amount_n[2] - 1))
            .filter(|usual| *usual > 0.0)
            .map_or(f64::NAN, |usual| amount / usual);
        let days = at.div_euclid(86_400_000);
        // Label counters: unknown when not read (off, or the store unavailable).
        let labels = |e: Option<&EntityStats>| e.and_then(|e| e.labels);
        let fraud = |l: Option<LabelStats>, w: usize| l.map_or(f64::NAN, |l| f64::from(l.fraud[w]));
        let share = |l: Option<LabelStats>| {
            l.filter(|l| l.labelled_30d > 0)
                .map_or(f64::NAN, |l| f64::from(l.fraud[1]) / f64::from(l.labelled_30d))
        };
        let declines = |l: Option<LabelStats>, w: usize| l.map_or(f64::NAN, |l| f64::from(l.declines[w]));
        // An address that is not keyed has no labels to find: its counts are 0.
        let email = match (input.record.email.is_some(), snapshot) {
            (true, Some(s)) if self.label_counters => Some(s.email.unwrap_or_default()),
            _ => None,
        };
        let (card_l, customer_l, ip_l, device_l) = (labels(card), labels(customer), labels(ip), labels(device));

        let row: [f64; N_FEATURES] = [
            amount,
            match input.method {
                PaymentMethod::Card => 0.0,
                PaymentMethod::BankTransfer => 1.0,
                PaymentMethod::Wallet => 2.0,
            },
            count(card, 0),
            count(card, 1),
            count(card, 2),
            count(card, 3),
            count(card, 4),
            count(customer, 0),
            count(customer, 1),
            count(customer, 2),
            count(customer, 3),
            count(customer, 4),
            count(ip, 0),
            count(ip, 1),
            count(ip, 2),
            count(ip, 3),
            count(ip, 4),
            count(device, 0),
            count(device, 1),
            count(device, 2),
            count(device, 3),
            count(device, 4),
            linked(card),
            linked(customer),
            linked(device),
            sum(card, 0),
            sum(card, 1),
            sum(card, 2),
            mean(card, 0),
            mean(card, 1),
            mean(card, 2),
            sum(customer, 0),
            sum(customer, 1),
            sum(customer, 2),
            mean(customer, 0),
            mean(customer, 1),
            mean(customer, 2),
            to_usual,
            age_s(card),
            age_s(device),
            input
                .account_created_at_ms
                .map_or(f64::NAN, |c| ((at - c).max(0) as f64) / MS_PER_DAY),
            ne(input.card_country, input.shipping_country),
            ne(input.card_country, input.billing_country),
            ne(input.billing_country, input.shipping_country),
            input
                .email_domain
                .as_deref()
                .map_or(f64::NAN, |d| f64::from(u8::from(self.is_disposable(d)))),
            (at.div_euclid(3_600_000).rem_euclid(24)) as f64,
            // 1970-01-01 was a Thursday; Monday is 0.
            ((days + 3).rem_euclid(7)) as f64,
            f64::from(input.item_count),
            f64::from(input.distinct_skus),
            fraud(card_l, 0),
            fraud(card_l, 1),
            fraud(customer_l, 0),
            fraud(customer_l, 1),
            fraud(device_l, 0),
            fraud(device_l, 1),
            fraud(ip_l, 0),
            fraud(ip_l, 1),
            fraud(email, 0),
            fraud(email, 1),
            share(device_l),
            share(ip_l),
            declines(card_l, 0),
            declines(card_l, 1),
            declines(customer_l, 0),
            declines(customer_l, 1),
            declines(device_l, 0),
            declines(device_l, 1),
            declines(ip_l, 0),
            declines(ip_l, 1),
        ];
        FeatureVector(row.map(|v| v as f32))
    }
}

#[cfg(test)]
mod tests;
