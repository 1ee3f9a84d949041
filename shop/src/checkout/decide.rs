//! Step: the risk decision of a payment attempt, stored once; the request the sidecar
//! is asked with is mapped here.

use std::collections::BTreeMap;

use shared::DecisionRequest;
use shared::limits::MAX_ITEMS;
use time::format_description::well_known::Rfc3339;

use super::attempts::Attempt;
use super::risk::{RiskSource, Verdict};
use super::{Checkout, Order, decisions, orders};
use crate::error::ShopError;

impl Checkout {
    /// The stored decision of this attempt, or a new one from the sidecar (or fallback).
    pub(super) async fn decision(&self, order: &Order, attempt: &Attempt) -> Result<Verdict, ShopError> {
        let client = self.pool.get().await?;
        if let Some(decision) = decisions::outcome(&client, attempt.id).await? {
            return Ok(decision);
        }
        let profile = crate::accounts::profile(&client, order.account_id).await?;
        drop(client);
        let request = risk_request(order, attempt, &profile);
        let outcome = self.risk.decide(&request).await;
        let client = self.pool.get().await?;
        decisions::insert(&client, attempt.id, &outcome).await?;
        if matches!(outcome.source, RiskSource::Fallback(_) | RiskSource::Refused(_)) {
            // Every order the fallback decided, or the sidecar could not, goes to the
            // review queue.
            orders::mark_for_review(&client, order.order_id).await?;
        }
        // A concurrent run of this step may have stored its decision first: that one stands.
        decisions::outcome(&client, attempt.id)
            .await?
            .ok_or(ShopError::InvalidState)
    }
}

/// Built from the order alone (its time, device and user agent as placed), so that a
/// retry sends the sidecar the same request and its idempotency holds.
fn risk_request(order: &Order, attempt: &Attempt, profile: &crate::accounts::Profile) -> DecisionRequest {
    DecisionRequest {
        transaction_id: attempt.key.clone(),
        occurred_at: order.created_at.format(&Rfc3339).ok(),
        amount: shared::Amount {
            value_minor: order.total_minor,
            currency: order.currency.clone(),
        },
        customer: shared::Customer {
            id: format!("cus_{}", order.account_id),
            email: Some(profile.email.clone()),
            account_created_at: profile.created_at.format(&Rfc3339).ok(),
        },
        payment: shared::Payment {
            method: Some(shared::PaymentMethod::Card),
            card_fingerprint: Some(order.card_fingerprint.clone()),
            bin: Some(order.card_bin.clone()),
            last4: Some(order.card_last4.clone()),
            card_country: None,
        },
        device: Some(shared::Device {
            ip: order.ip.clone(),
            id: order.device_id.clone(),
            user_agent: order.user_agent.clone(),
        }),
        shipping: Some(shared::Region {
            country: Some(order.shipping_country.clone()),
        }),
        billing: Some(shared::Region {
            country: Some(order.billing_country.clone()),
        }),
        items: order
            .lines
            .iter()
            .take(MAX_ITEMS)
            .map(|l| shared::Item {
                sku: l.sku.clone(),
                quantity: l.quantity.max(0) as u32,
                unit_price_minor: l.unit_price_minor,
            })
            .collect(),
        metadata: BTreeMap::from([("order_id".to_owned(), order.public_id.clone())]),
    }
}
