//! The model's ordered feature list.
//!
//! Serving (the sidecar) and training (`ml/`) must agree on the order, so the list
//! lives here once and carries a hash: a model card names the hash it was trained
//! with, and the sidecar refuses a model whose hash differs. `feature_list.json`
//! beside this crate is the same list for Python; a test keeps the two equal.

/// Feature names, in the column order of the model's input row.
///
/// Counts include the transaction being decided. Amounts are in the reference
/// currency's major units. A value that is unknown (no device in the request, the
/// velocity store unavailable) is NaN, which gradient-boosted trees route as missing.
///
/// The label features count the entity's earlier transactions known to be fraud when
/// the decision is made (labels arrive later, through `POST /v1/feedback`), over
/// transaction time; a share is fraud over labelled (either label), unknown with none.
/// Declines are the gateway's, reported as outcomes, over the time of the decline.
pub const FEATURE_NAMES: [&str; N_FEATURES] = [
    "amount_ref",
    "payment_method",
    "card_count_1m",
    "card_count_1h",
    "card_count_24h",
    "card_count_7d",
    "card_count_30d",
    "customer_count_1m",
    "customer_count_1h",
    "customer_count_24h",
    "customer_count_7d",
    "customer_count_30d",
    "ip_count_1m",
    "ip_count_1h",
    "ip_count_24h",
    "ip_count_7d",
    "ip_count_30d",
    "device_count_1m",
    "device_count_1h",
    "device_count_24h",
    "device_count_7d",
    "device_count_30d",
    "card_distinct_customers_24h",
    "customer_distinct_cards_24h",
    "device_distinct_cards_24h",
    "card_amount_sum_24h",
    "card_amount_sum_7d",
    "card_amount_sum_30d",
    "card_amount_mean_24h",
    "card_amount_mean_7d",
    "card_amount_mean_30d",
    "customer_amount_sum_24h",
    "customer_amount_sum_7d",
    "customer_amount_sum_30d",
    "customer_amount_mean_24h",
    "customer_amount_mean_7d",
    "customer_amount_mean_30d",
    "amount_to_customer_mean_30d",
    "card_age_seconds",
    "device_age_seconds",
    "account_age_days",
    "card_country_ne_shipping",
    "card_country_ne_billing",
    "billing_ne_shipping",
    "email_disposable",
    "hour_of_day",
    "day_of_week",
    "item_count",
    "distinct_skus",
    "card_fraud_count_7d",
    "card_fraud_count_30d",
    "customer_fraud_count_7d",
    "customer_fraud_count_30d",
    "device_fraud_count_7d",
    "device_fraud_count_30d",
    "ip_fraud_count_7d",
    "ip_fraud_count_30d",
    "email_fraud_count_7d",
    "email_fraud_count_30d",
    "device_fraud_share_30d",
    "ip_fraud_share_30d",
    "card_decline_count_1h",
    "card_decline_count_24h",
    "customer_decline_count_1h",
    "customer_decline_count_24h",
    "device_decline_count_1h",
    "device_decline_count_24h",
    "ip_decline_count_1h",
    "ip_decline_count_24h",
];

pub const N_FEATURES: usize = 69;

/// FNV-1a (64 bit) over the names joined by `\n`, as lower-case hex in model cards.
pub const FEATURE_LIST_HASH: u64 = fnv1a_names(&FEATURE_NAMES);

/// Index of a feature by name; `None` for an unknown name.
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

/// The hash as it is written in model cards.
pub fn feature_list_hash_hex() -> String {
    format!("{FEATURE_LIST_HASH:016x}")
}

const fn fnv1a_names(names: &[&str]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut i = 0;
    while i < names.len() {
        if i > 0 {
            hash ^= b'\n' as u64;
            hash = hash.wrapping_mul(PRIME);
        }
        let bytes = names[i].as_bytes();
        let mut j = 0;
        while j < bytes.len() {
            hash ^= bytes[j] as u64;
            hash = hash.wrapping_mul(PRIME);
            j += 1;
        }
        i += 1;
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    struct FeatureListFile {
        hash: String,
        names: Vec<String>,
    }

    #[test]
    fn feature_list_json_matches_the_rust_list() {
        let text = include_str!("../feature_list.json");
        let file: FeatureListFile = serde_json::from_str(text).expect("feature_list.json parses");
        assert_eq!(
            file.names, FEATURE_NAMES,
            "names or order differ: regenerate feature_list.json"
        );
        assert_eq!(file.hash, feature_list_hash_hex());
    }

    #[test]
    fn names_are_unique_snake_case() {
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{name} is not snake_case"
            );
            assert_eq!(feature_index(name), Some(i), "{name} appears twice");
        }
    }

    #[test]
    fn hash_changes_when_order_changes() {
        let mut swapped = FEATURE_NAMES;
        swapped.swap(0, 1);
        assert_ne!(fnv1a_names(&swapped), FEATURE_LIST_HASH);
    }
}
