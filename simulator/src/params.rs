//! The simulator's parameters (`simulator/params.yaml` documents each one).

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    pub start: String,
    pub weeks: u32,
    pub customers: CustomerParams,
    pub categories: Vec<Category>,
    pub rhythm: Rhythm,
    pub fraud: FraudParams,
    /// Outcomes and label delays; defaults when the file has no `feedback` section.
    #[serde(default)]
    pub feedback: FeedbackParams,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackParams {
    /// Share of fraud that got through and is charged back.
    pub chargeback_share: f64,
    /// Days from the payment to the lost dispute's chargeback label (inclusive, uniform).
    pub chargeback_days: [u32; 2],
    /// Card-testing attempts the issuer declines.
    pub card_testing_decline_share: f64,
    /// Other payments declined (insufficient funds and the like).
    pub legit_decline_share: f64,
    /// Payments (not declined) the shop steps up with a one-time code: the honest
    /// customer passes at once, the fraudster fails; either way labelled at once.
    pub challenge_share: f64,
    /// Days after which a payment with no other label is known for what it is (the
    /// card schemes' chargeback window has closed).
    pub settled_days: u32,
}

impl Default for FeedbackParams {
    fn default() -> Self {
        FeedbackParams {
            chargeback_share: 0.8,
            chargeback_days: [1, 60],
            card_testing_decline_share: 0.7,
            legit_decline_share: 0.01,
            challenge_share: 0.02,
            settled_days: 120,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomerParams {
    pub initial: u32,
    pub new_per_day: f64,
    pub countries: BTreeMap<String, f64>,
    pub cards: [u32; 2],
    pub devices: [u32; 2],
    pub purchases_per_week: f64,
    pub account_age_days: [u32; 2],
    pub ship_abroad_share: f64,
    pub new_device_share: f64,
    pub guest_share: f64,
    pub first_purchase_at_signup: f64,
    pub email_domains: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Category {
    pub name: String,
    pub weight: f64,
    pub median_minor: f64,
    pub sigma: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rhythm {
    pub hour_weights: [f64; 24],
    pub weekend_factor: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FraudParams {
    pub card_testing: CardTesting,
    pub stolen_card_spree: Spree,
    pub account_takeover: Spree,
    pub bin_attack: BinAttack,
    pub bust_out: BustOut,
    pub repeat_fraudster: RepeatFraudster,
    pub look_alike_share: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardTesting {
    pub campaigns_per_week: f64,
    pub cards: [u32; 2],
    pub minutes: [u32; 2],
    pub amount_minor: [i64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spree {
    pub campaigns_per_week: f64,
    pub purchases: [u32; 2],
    pub hours: [u32; 2],
    pub amount_median_minor: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BinAttack {
    pub campaigns_per_week: f64,
    pub attempts: [u32; 2],
    pub minutes: [u32; 2],
    pub amount_minor: [i64; 2],
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BustOut {
    pub campaigns_per_week: f64,
    pub warmup_purchases: [u32; 2],
    pub warmup_days: [u32; 2],
    pub burst: [u32; 2],
    pub amount_median_minor: f64,
}

/// One fraudster, one account, device and home-country IP, coming back every few days
/// with another stolen card: each visit looks like an ordinary new customer's; what
/// gives it away is the earlier visits' fraud labels, once they are known.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatFraudster {
    pub campaigns_per_week: f64,
    pub visits: [u32; 2],
    pub gap_days: [u32; 2],
    pub amount_median_minor: f64,
}

impl Params {
    pub fn from_yaml(text: &str) -> anyhow::Result<Params> {
        let params: Params = serde_yaml::from_str(text)?;
        anyhow::ensure!(params.weeks > 0, "weeks must be at least 1");
        anyhow::ensure!(!params.customers.countries.is_empty(), "customers.countries is empty");
        anyhow::ensure!(!params.categories.is_empty(), "categories is empty");
        anyhow::ensure!(
            !params.customers.email_domains.is_empty(),
            "customers.email_domains is empty"
        );
        Ok(params)
    }
}
