//! The contract's field limits, one definition for the sidecar that enforces them and
//! the shop that must stay inside them.

/// `transaction_id`, `customer.id`, `device.id`, `payment.card_fingerprint`, `items[].sku`.
pub const MAX_ID_CHARS: usize = 128;
/// `amount.value_minor` and `items[].unit_price_minor`: 10^13.
pub const MAX_AMOUNT_MINOR: i64 = 10_000_000_000_000;
pub const MAX_ITEMS: usize = 100;
pub const MAX_METADATA_KEYS: usize = 20;
pub const MAX_USER_AGENT_CHARS: usize = 512;
