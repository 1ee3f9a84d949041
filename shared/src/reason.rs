//! The documented list of reason codes a decision can carry.
//!
//! Wire codes are stable UPPER_SNAKE strings; each has one source. Policy rules must
//! name a code from this list (the sidecar refuses a policy file that does not), so
//! every code a client sees is documented here and in the README.

use serde::{Deserialize, Serialize};

/// Where a reason came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum ReasonSource {
    Rule,
    Velocity,
    List,
    Model,
    Cti,
    #[serde(other)]
    Unknown,
}

impl ReasonSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonSource::Rule => "rule",
            ReasonSource::Velocity => "velocity",
            ReasonSource::List => "list",
            ReasonSource::Model => "model",
            ReasonSource::Cti => "cti",
            ReasonSource::Unknown => "unknown",
        }
    }
}

macro_rules! reason_codes {
    ($($(#[doc = $doc:literal])+ $variant:ident => ($code:literal, $source:ident),)+) => {
        /// Every reason code, with what it means and when it fires.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ReasonCode {
            $($(#[doc = $doc])+ $variant,)+
        }

        impl ReasonCode {
            pub const ALL: &'static [ReasonCode] = &[$(ReasonCode::$variant,)+];

            pub fn as_str(self) -> &'static str {
                match self { $(ReasonCode::$variant => $code,)+ }
            }

            pub fn source(self) -> ReasonSource {
                match self { $(ReasonCode::$variant => ReasonSource::$source,)+ }
            }

            /// The documentation of the code, for the README table and error messages.
            pub fn description(self) -> &'static str {
                match self { $(ReasonCode::$variant => concat!($($doc),+).trim_ascii(),)+ }
            }

            pub fn parse(code: &str) -> Option<ReasonCode> {
                match code { $($code => Some(ReasonCode::$variant),)+ _ => None }
            }
        }
    };
}

reason_codes! {
    /// The card was used for many payments in the last minute (card testing).
    CardVelocity1m => ("CARD_VELOCITY_1M", Velocity),
    /// The card was used for many payments in the last hour.
    CardVelocity1h => ("CARD_VELOCITY_1H", Velocity),
    /// The card was used for many payments in the last 24 hours.
    CardVelocity24h => ("CARD_VELOCITY_24H", Velocity),
    /// The customer made many payments in the last hour.
    CustomerVelocity1h => ("CUSTOMER_VELOCITY_1H", Velocity),
    /// Many payments came from this IP address (IPv6: its /64) in the last hour.
    IpVelocity1h => ("IP_VELOCITY_1H", Velocity),
    /// Many payments came from this device in the last hour.
    DeviceVelocity1h => ("DEVICE_VELOCITY_1H", Velocity),
    /// The device used many distinct cards in the last 24 hours.
    DeviceManyCards => ("DEVICE_MANY_CARDS", Velocity),
    /// The customer used many distinct cards in the last 24 hours.
    CustomerManyCards => ("CUSTOMER_MANY_CARDS", Velocity),
    /// The card was used by many distinct customers in the last 24 hours.
    CardManyCustomers => ("CARD_MANY_CUSTOMERS", Velocity),
    /// The amount is far above the customer's usual spend over 30 days.
    AmountAboveUsual => ("AMOUNT_ABOVE_USUAL", Velocity),
    /// The card, customer, device or e-mail address was on a transaction known to be
    /// fraud (a label) within the last 30 days of transaction time.
    KnownFraud => ("KNOWN_FRAUD", Velocity),
    /// Payments of the card or the device were declined several times in the last
    /// hour (card testing is a run of declines).
    Declines1h => ("DECLINES_1H", Velocity),
    /// The amount is above a fixed limit of the policy.
    HighAmount => ("HIGH_AMOUNT", Rule),
    /// The customer account is only days old.
    NewAccount => ("NEW_ACCOUNT", Rule),
    /// The card's country differs from the shipping country.
    CountryMismatch => ("COUNTRY_MISMATCH", Rule),
    /// The e-mail address is at a disposable-mail domain.
    DisposableEmail => ("DISPOSABLE_EMAIL", List),
    /// A trusted pattern of the policy allowed the payment (for example a long-standing
    /// customer with a known card); skips challenge rules and score bands.
    TrustedCustomer => ("TRUSTED_CUSTOMER", Rule),
    /// The velocity store was unavailable and the amount was high enough that the
    /// policy asks for verification instead of deciding blind.
    VelocityUnavailableHighAmount => ("VELOCITY_UNAVAILABLE_HIGH_AMOUNT", Rule),
    /// The model's fraud score is at or above the challenge threshold.
    ModelHighRisk => ("MODEL_HIGH_RISK", Model),
    /// The model's fraud score is at or above the block threshold.
    ModelVeryHighRisk => ("MODEL_VERY_HIGH_RISK", Model),
    /// One of the (at most three) features that raised the model's score most for this
    /// decision, with its TreeSHAP contribution in log-odds; follows a model reason.
    ModelFactor => ("MODEL_FACTOR", Model),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_upper_snake_and_round_trip() {
        for code in ReasonCode::ALL {
            let s = code.as_str();
            assert!(
                s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                "{s} is not UPPER_SNAKE"
            );
            assert_eq!(ReasonCode::parse(s), Some(*code));
            assert!(!code.description().is_empty());
        }
    }

    #[test]
    fn unknown_source_and_decision_are_tolerated() {
        let src: ReasonSource = serde_json::from_str("\"satellite\"").expect("tolerant");
        assert_eq!(src, ReasonSource::Unknown);
        let d: crate::Decision = serde_json::from_str("\"review\"").expect("tolerant");
        assert_eq!(d, crate::Decision::Unknown);
    }
}
