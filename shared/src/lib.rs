//! Wire types shared by the shop and the risk sidecar.
//!
//! Only serde derives live here: no IO, no business logic. Field names are the
//! contract in `../shared/contract/risk-decision-api.md`; renaming one is a breaking change.

pub mod decision;
pub mod error;
pub mod features;
pub mod feedback;
pub mod history;
pub mod limits;
pub mod reason;

pub use decision::{
    Amount, Customer, Decision, DecisionRequest, DecisionResponse, Degraded, Device, Item, Payment, PaymentMethod,
    Reason, Region,
};
pub use error::{ApiErrorBody, ApiErrorDetail};
pub use features::{FEATURE_LIST_HASH, FEATURE_NAMES, N_FEATURES, feature_index};
pub use feedback::{FeedbackRequest, FeedbackResponse, LabelSource, OutcomeRequest, OutcomeResponse, OutcomeStatus};
pub use history::{HistoryOutcome, HistoryRecord, Label};
pub use reason::{ReasonCode, ReasonSource};
