//! Checkout: place an order from the cart, authorise, ask the risk sidecar, then
//! capture, challenge or void.
//!
//! [`Checkout::advance`] is the one state machine. Each step is idempotent (the gateway
//! by key, the sidecar by transaction id, our rows by unique keys and guarded state
//! changes), so running it again after a double click, a retry or a crash finishes the
//! payment without charging twice.

pub mod orders;
pub mod risk;
pub mod verification;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use serde_json::json;
use shared::{Decision, DecisionRequest};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub use orders::{Order, OrderStatus};
pub use risk::{RiskClient, RiskOutcome, RiskSource};

use crate::accounts::Identity;
use crate::error::{ShopError, is_unique_violation};
use crate::gateway::{Authorisation, CardInput, GatewayError, PaymentGateway};

/// What the shop knows of the shopper's browser, sent to the sidecar.
#[derive(Debug, Clone, Default)]
pub struct DeviceContext {
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug)]
pub struct CheckoutRequest {
    /// One per checkout form (or API `Idempotency-Key`): a second submission finds the
    /// first order.
    pub checkout_key: String,
    pub card: CardInput,
    pub shipping_country: String,
    pub billing_country: String,
    pub device: DeviceContext,
}

#[derive(Debug)]
pub enum VerifyOutcome {
    Passed(Order),
    WrongCode {
        remaining: i32,
    },
    /// Too many wrong codes, or expired: the authorisation is voided.
    Failed(Order),
}

#[derive(Clone)]
pub struct Checkout {
    pool: Pool,
    gateway: Arc<dyn PaymentGateway>,
    risk: RiskClient,
    code_ttl: Duration,
    max_attempts: i32,
    /// Where shoppers open the shop: the link in the code's mail.
    public_url: String,
}

struct Attempt {
    id: i64,
    key: String,
    status: String,
    authorisation_id: Option<String>,
}

// === impl Checkout ===

impl Checkout {
    pub fn new(
        pool: Pool,
        gateway: Arc<dyn PaymentGateway>,
        risk: RiskClient,
        code_ttl: Duration,
        max_attempts: i32,
        public_url: String,
    ) -> Checkout {
        Checkout {
            pool,
            gateway,
            risk,
            code_ttl,
            max_attempts,
            public_url,
        }
    }

    #[tracing::instrument(name = "Checkout", skip_all, fields(account_id = identity.account_id))]
    pub async fn place(&self, identity: &Identity, request: CheckoutRequest) -> Result<Order, ShopError> {
        let key = parse_checkout_key(&request.checkout_key)?;
        let shipping = parse_country("shipping_country", &request.shipping_country)?;
        let billing = parse_country("billing_country", &request.billing_country)?;
        if let Some(existing) = self.existing(identity, &key).await? {
            return self.advance(existing, &request.device).await;
        }
        let card = self.gateway.tokenise(request.card).await.map_err(|e| match e {
            GatewayError::InvalidCard(why) => ShopError::validation("card", why),
            other => gateway_failure(other),
        })?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let lines = tx
            .query(
                "select p.product_id, p.sku, p.name, i.quantity, p.price_minor, p.currency, p.stock
                   from cart c join cart_item i using (cart_id) join product p using (product_id)
                  where c.account_id = $1 order by p.product_id for update of p",
                &[&identity.account_id],
            )
            .await?;
        if lines.is_empty() {
            // Either the cart is empty, or a concurrent submission of this very form
            // has just turned it into an order: then finish that order.
            drop(tx);
            drop(client);
            return match self.existing(identity, &key).await? {
                Some(existing) => self.advance(existing, &request.device).await,
                None => Err(ShopError::EmptyCart),
            };
        }
        let mut total: i64 = 0;
        for line in &lines {
            let (quantity, stock): (i32, i32) = (line.get(3), line.get(6));
            if quantity > stock {
                return Err(ShopError::OutOfStock {
                    name: line.get(2),
                    available: stock,
                });
            }
            total += line.get::<_, i64>(4) * i64::from(quantity);
        }
        let currency: String = lines[0].get(5);
        let public_id = format!("ord_{}", ulid::Ulid::new().to_string().to_lowercase());
        let inserted = tx
            .query_one(
                "insert into customer_order (public_id, account_id, checkout_key, status, total_minor, currency,
                   shipping_country, billing_country, card_token, card_fingerprint, card_bin, card_last4, device_id, ip)
                 values ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) returning order_id",
                &[
                    &public_id,
                    &identity.account_id,
                    &key,
                    &total,
                    &currency,
                    &shipping,
                    &billing,
                    &card.token,
                    &card.fingerprint,
                    &card.bin,
                    &card.last4,
                    &request.device.device_id,
                    &request.device.ip,
                ],
            )
            .await;
        let order_id: i64 = match inserted {
            Ok(row) => row.get(0),
            // A concurrent submission of the same form won the race: finish that one.
            Err(e) if is_unique_violation(&e, "customer_order_checkout_key_key") => {
                drop(tx);
                drop(client);
                let existing = self.existing(identity, &key).await?.ok_or(ShopError::InvalidState)?;
                return self.advance(existing, &request.device).await;
            }
            Err(e) => return Err(e.into()),
        };
        for line in &lines {
            let (product_id, quantity): (i64, i32) = (line.get(0), line.get(3));
            tx.execute(
                "insert into order_item (order_id, product_id, sku, name, quantity, unit_price_minor)
                 values ($1, $2, $3, $4, $5, $6)",
                &[
                    &order_id,
                    &product_id,
                    &line.get::<_, String>(1),
                    &line.get::<_, String>(2),
                    &quantity,
                    &line.get::<_, i64>(4),
                ],
            )
            .await?;
            tx.execute(
                "update product set stock = stock - $2 where product_id = $1",
                &[&product_id, &quantity],
            )
            .await?;
        }
        tx.execute(
            "insert into order_event (order_id, from_status, to_status, detail) values ($1, null, 'pending', $2)",
            &[&order_id, &json!({"total_minor": total, "currency": currency})],
        )
        .await?;
        tx.execute(
            "delete from cart_item where cart_id = (select cart_id from cart where account_id = $1)",
            &[&identity.account_id],
        )
        .await?;
        tx.commit().await?;
        let order = orders::by_public_id(&client, &public_id).await?;
        drop(client);
        self.advance(order, &request.device).await
    }

    async fn existing(&self, identity: &Identity, key: &str) -> Result<Option<Order>, ShopError> {
        let client = self.pool.get().await?;
        match orders::by_checkout_key(&client, key).await? {
            Some(order) if order.account_id == identity.account_id => Ok(Some(order)),
            Some(_) => Err(ShopError::validation(
                "checkout_key",
                "this checkout key is already used",
            )),
            None => Ok(None),
        }
    }

    /// Takes the order as far as it can go now; returns it as it then stands.
    #[tracing::instrument(name = "Advance order", skip_all, fields(order = %order.public_id))]
    pub async fn advance(&self, order: Order, device: &DeviceContext) -> Result<Order, ShopError> {
        if order.status.is_final() {
            return Ok(order);
        }
        let mut attempt = self.attempt(&order).await?;
        if attempt.status == "started" {
            attempt = self.authorise(&order, attempt).await?;
        }
        match attempt.status.as_str() {
            "authorised" => self.decide_and_settle(&order, &attempt, device).await?,
            // A crash came between the gateway's capture and our commit: record it now.
            "captured" => {
                let detail = json!({"recovered": true});
                self.finish(&order, &attempt, None, OrderStatus::Paid, detail).await?;
            }
            _ => {
                let reason = json!({"reason": attempt.status});
                self.finish(&order, &attempt, None, OrderStatus::Rejected, reason)
                    .await?;
            }
        }
        let client = self.pool.get().await?;
        orders::by_public_id(&client, &order.public_id).await
    }

    async fn attempt(&self, order: &Order) -> Result<Attempt, ShopError> {
        let key = format!("{}:pay_1", order.public_id);
        let client = self.pool.get().await?;
        client
            .execute(
                "insert into payment_attempt (order_id, attempt, idempotency_key, status)
                 values ($1, 1, $2, 'started') on conflict do nothing",
                &[&order.order_id, &key],
            )
            .await?;
        let row = client
            .query_one(
                "select payment_attempt_id, status, authorisation_id from payment_attempt where idempotency_key = $1",
                &[&key],
            )
            .await?;
        Ok(Attempt {
            id: row.get(0),
            key,
            status: row.get(1),
            authorisation_id: row.get(2),
        })
    }

    async fn authorise(&self, order: &Order, mut attempt: Attempt) -> Result<Attempt, ShopError> {
        let result = self
            .gateway
            .authorise(&attempt.key, &order.card_token, order.total_minor, &order.currency)
            .await
            .map_err(gateway_failure)?;
        let (status, authorisation_id, decline) = match result {
            Authorisation::Approved { authorisation_id } => ("authorised", Some(authorisation_id), None),
            Authorisation::Declined { code } => {
                crate::metrics::checkout_outcome("declined");
                ("declined", None, Some(code))
            }
        };
        let client = self.pool.get().await?;
        client
            .execute(
                "update payment_attempt set status = $2, authorisation_id = $3, decline_code = $4, updated_at = now()
                  where payment_attempt_id = $1 and status = 'started'",
                &[&attempt.id, &status, &authorisation_id, &decline],
            )
            .await?;
        attempt.status = status.to_owned();
        attempt.authorisation_id = authorisation_id;
        Ok(attempt)
    }

    async fn decide_and_settle(
        &self,
        order: &Order,
        attempt: &Attempt,
        device: &DeviceContext,
    ) -> Result<(), ShopError> {
        let outcome = self.decision(order, attempt, device).await?;
        let detail = json!({"decision": outcome.as_str()});
        match outcome {
            Decision::Allow => self.capture(order, attempt, detail).await,
            Decision::Block => {
                crate::metrics::checkout_outcome("blocked");
                self.void_and_reject(order, attempt, json!({"reason": "blocked"})).await
            }
            Decision::Challenge | Decision::Unknown => self.challenge(order, attempt).await,
        }
    }

    /// The stored decision of this attempt, or a new one from the sidecar (or fallback).
    async fn decision(&self, order: &Order, attempt: &Attempt, device: &DeviceContext) -> Result<Decision, ShopError> {
        let client = self.pool.get().await?;
        if let Some(row) = client
            .query_opt(
                "select outcome from risk_decision where payment_attempt_id = $1",
                &[&attempt.id],
            )
            .await?
        {
            return Ok(parse_decision(row.get(0)));
        }
        let request = self.risk_request(&client, order, attempt, device).await?;
        drop(client);
        let outcome = self.risk.decide(&request).await;
        let client = self.pool.get().await?;
        store_decision(&client, order, attempt, &outcome).await?;
        let row = client
            .query_one(
                "select outcome from risk_decision where payment_attempt_id = $1",
                &[&attempt.id],
            )
            .await?;
        Ok(parse_decision(row.get(0)))
    }

    async fn risk_request(
        &self,
        client: &deadpool_postgres::Client,
        order: &Order,
        attempt: &Attempt,
        device: &DeviceContext,
    ) -> Result<DecisionRequest, ShopError> {
        let account = client
            .query_one(
                "select email, created_at from account where account_id = $1",
                &[&order.account_id],
            )
            .await?;
        let created: OffsetDateTime = account.get(1);
        let now = OffsetDateTime::now_utc().format(&Rfc3339).ok();
        Ok(DecisionRequest {
            transaction_id: attempt.key.clone(),
            occurred_at: now,
            amount: shared::Amount {
                value_minor: order.total_minor,
                currency: order.currency.clone(),
            },
            customer: shared::Customer {
                id: format!("cus_{}", order.account_id),
                email: Some(account.get(0)),
                account_created_at: created.format(&Rfc3339).ok(),
            },
            payment: shared::Payment {
                method: Some(shared::PaymentMethod::Card),
                card_fingerprint: Some(order.card_fingerprint.clone()),
                bin: Some(order.card_bin.clone()),
                last4: Some(order.card_last4.clone()),
                card_country: None,
            },
            device: Some(shared::Device {
                ip: order.ip.clone().or_else(|| device.ip.clone()),
                id: order.device_id.clone().or_else(|| device.device_id.clone()),
                user_agent: device.user_agent.as_ref().map(|ua| ua.chars().take(512).collect()),
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
                .take(100)
                .map(|l| shared::Item {
                    sku: l.sku.clone(),
                    quantity: l.quantity.max(0) as u32,
                    unit_price_minor: l.unit_price_minor,
                })
                .collect(),
            metadata: BTreeMap::from([("order_id".to_owned(), order.public_id.clone())]),
        })
    }

    async fn capture(&self, order: &Order, attempt: &Attempt, detail: serde_json::Value) -> Result<(), ShopError> {
        let authorisation = attempt.authorisation_id.as_deref().ok_or(ShopError::InvalidState)?;
        self.gateway
            .capture(&format!("{}:capture", attempt.key), authorisation)
            .await
            .map_err(gateway_failure)?;
        if self
            .finish(order, attempt, Some("captured"), OrderStatus::Paid, detail)
            .await?
        {
            crate::metrics::checkout_outcome("paid");
        }
        Ok(())
    }

    async fn void_and_reject(
        &self,
        order: &Order,
        attempt: &Attempt,
        detail: serde_json::Value,
    ) -> Result<(), ShopError> {
        let authorisation = attempt.authorisation_id.as_deref().ok_or(ShopError::InvalidState)?;
        self.gateway
            .void(&format!("{}:void", attempt.key), authorisation)
            .await
            .map_err(gateway_failure)?;
        self.finish(order, attempt, Some("voided"), OrderStatus::Rejected, detail)
            .await?;
        Ok(())
    }

    /// Records the attempt's new status and the order's final state in one transaction.
    async fn finish(
        &self,
        order: &Order,
        attempt: &Attempt,
        attempt_status: Option<&str>,
        to: OrderStatus,
        detail: serde_json::Value,
    ) -> Result<bool, ShopError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(status) = attempt_status {
            tx.execute(
                "update payment_attempt set status = $2, updated_at = now() where payment_attempt_id = $1",
                &[&attempt.id, &status],
            )
            .await?;
        }
        let from = [OrderStatus::Pending, OrderStatus::AwaitingVerification];
        let moved = orders::transition(&tx, order.order_id, &from, to, detail).await?;
        tx.commit().await?;
        Ok(moved)
    }

    /// Sends a code once and waits for the shopper; a code already decided moves on.
    async fn challenge(&self, order: &Order, attempt: &Attempt) -> Result<(), ShopError> {
        let mut client = self.pool.get().await?;
        let status: Option<String> = client
            .query_opt(
                "select status from verification where order_id = $1",
                &[&order.order_id],
            )
            .await?
            .map(|r| r.get(0));
        match status.as_deref() {
            Some("passed") => return self.capture(order, attempt, json!({"verification": "passed"})).await,
            Some("failed") | Some("expired") => {
                let detail = json!({"reason": format!("verification_{}", status.unwrap_or_default())});
                return self.void_and_reject(order, attempt, detail).await;
            }
            Some(_) => return Ok(()),
            None => {}
        }
        let code = verification::new_code();
        let tx = client.transaction().await?;
        let created = tx
            .execute(
                "insert into verification (order_id, code_hash, expires_at, max_attempts, status)
                 values ($1, $2, now() + make_interval(secs => $3), $4, 'pending') on conflict do nothing",
                &[
                    &order.order_id,
                    &verification::hash(&order.public_id, &code),
                    &(self.code_ttl.as_secs_f64()),
                    &self.max_attempts,
                ],
            )
            .await?;
        if created == 1 {
            let email: String = tx
                .query_one("select email from account where account_id = $1", &[&order.account_id])
                .await?
                .get(0);
            let minutes = self.code_ttl.as_secs().div_ceil(60);
            verification::send(
                &tx,
                &email,
                "Your verification code",
                &format!(
                    "Enter {code} at {}/orders/{}/verify to confirm your order. The code is valid for {minutes} minutes.",
                    self.public_url, order.public_id
                ),
            )
            .await?;
            orders::transition(
                &tx,
                order.order_id,
                &[OrderStatus::Pending],
                OrderStatus::AwaitingVerification,
                json!({"decision": "challenge"}),
            )
            .await?;
            crate::metrics::checkout_outcome("challenged");
        }
        tx.commit().await?;
        Ok(())
    }

    /// Checks a one-time code; the right one captures, too many wrong ones or an
    /// expired one void the authorisation.
    #[tracing::instrument(name = "Verify code", skip_all, fields(order = %public_id))]
    pub async fn verify(&self, identity: &Identity, public_id: &str, code: &str) -> Result<VerifyOutcome, ShopError> {
        let order = self.order_for(identity, public_id).await?;
        match order.status {
            OrderStatus::AwaitingVerification => {}
            OrderStatus::Paid => return Ok(VerifyOutcome::Passed(order)),
            _ => return Err(ShopError::InvalidState),
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                "select code_hash, expires_at < now(), attempts, max_attempts, status
                   from verification where order_id = $1 for update",
                &[&order.order_id],
            )
            .await?;
        let (stored, expired, attempts, max): (Vec<u8>, bool, i32, i32) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        let status: String = row.get(4);
        let (new_status, wrong) = if status != "pending" {
            (status, false)
        } else if expired {
            ("expired".to_owned(), false)
        } else if verification::matches(&order.public_id, code, &stored) {
            ("passed".to_owned(), false)
        } else if attempts + 1 >= max {
            ("failed".to_owned(), true)
        } else {
            ("pending".to_owned(), true)
        };
        tx.execute(
            "update verification set status = $2, attempts = attempts + $3 where order_id = $1",
            &[&order.order_id, &new_status, &i32::from(wrong)],
        )
        .await?;
        tx.commit().await?;
        drop(client);
        if new_status == "pending" {
            return Ok(VerifyOutcome::WrongCode {
                remaining: max - attempts - 1,
            });
        }
        crate::metrics::checkout_outcome(match new_status.as_str() {
            "passed" => "verification_passed",
            "expired" => "verification_expired",
            _ => "verification_failed",
        });
        let order = self.advance(order, &DeviceContext::default()).await?;
        Ok(match order.status {
            OrderStatus::Paid => VerifyOutcome::Passed(order),
            _ => VerifyOutcome::Failed(order),
        })
    }

    /// Finishes orders left `pending` for longer than `older_than` (a crash, a
    /// gateway outage, a shopper who closed the tab mid-payment) and orders whose code
    /// expired unused: the same state machine, so a capture that happened before a
    /// crash is recorded, not repeated.
    #[tracing::instrument(name = "Reconcile stale orders", skip(self))]
    pub async fn reconcile(&self, older_than: Duration) -> Result<usize, ShopError> {
        let client = self.pool.get().await?;
        // A code nobody entered in time ends the wait too: the authorisation is a hold
        // on the shopper's money and must be voided, not left to lapse at the bank.
        client
            .execute(
                "update verification set status = 'expired' where status = 'pending' and expires_at < now()",
                &[],
            )
            .await?;
        let rows = client
            .query(
                "select o.public_id from customer_order o
                  where (o.status = 'pending' and o.updated_at < now() - make_interval(secs => $1))
                     or (o.status = 'awaiting_verification'
                         and exists (select 1 from verification v where v.order_id = o.order_id and v.status <> 'pending'))
                  order by o.order_id limit 100",
                &[&older_than.as_secs_f64()],
            )
            .await?;
        drop(client);
        let mut finished = 0;
        for row in rows {
            let client = self.pool.get().await?;
            let order = orders::by_public_id(&client, row.get(0)).await?;
            drop(client);
            match self.advance(order, &DeviceContext::default()).await {
                Ok(order) if order.status.is_final() => finished += 1,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Order still pending."),
            }
        }
        if finished > 0 {
            tracing::info!(finished, "Reconciled stale orders.");
        }
        Ok(finished)
    }

    /// An order of this account (another account's order is "not found").
    pub async fn order_for(&self, identity: &Identity, public_id: &str) -> Result<Order, ShopError> {
        let client = self.pool.get().await?;
        let order = orders::by_public_id(&client, public_id).await?;
        if order.account_id != identity.account_id {
            return Err(ShopError::NotFound);
        }
        Ok(order)
    }

    pub async fn orders_for(&self, identity: &Identity) -> Result<Vec<Order>, ShopError> {
        let client = self.pool.get().await?;
        orders::for_account(&client, identity.account_id).await
    }
}

async fn store_decision(
    client: &deadpool_postgres::Client,
    order: &Order,
    attempt: &Attempt,
    outcome: &RiskOutcome,
) -> Result<(), ShopError> {
    let response = outcome.response.as_ref();
    let fallback = match outcome.source {
        RiskSource::Fallback(reason) => Some(reason.as_str()),
        _ => None,
    };
    let reasons = response.map(|r| json!(r.reasons)).unwrap_or_else(|| json!([]));
    let degraded = response.map(|r| json!(r.degraded)).unwrap_or_else(|| json!([]));
    client
        .execute(
            "insert into risk_decision (payment_attempt_id, source, decision_id, outcome, score, reasons,
               model_version, policy_version, degraded, fallback_reason, latency_us)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) on conflict do nothing",
            &[
                &attempt.id,
                &outcome.source.as_str(),
                &response.map(|r| r.decision_id.clone()),
                &outcome.decision.as_str(),
                &response.map(|r| r.score),
                &reasons,
                &response.map(|r| r.model_version.clone()),
                &response.map(|r| r.policy_version.clone()),
                &degraded,
                &fallback,
                &(outcome.latency.as_micros() as i64),
            ],
        )
        .await?;
    if fallback.is_some() {
        // Every order the fallback decided goes to the review queue.
        client
            .execute(
                "update customer_order set needs_review = true, updated_at = now() where order_id = $1",
                &[&order.order_id],
            )
            .await?;
    }
    Ok(())
}

fn parse_decision(s: &str) -> Decision {
    match s {
        "allow" => Decision::Allow,
        "block" => Decision::Block,
        _ => Decision::Challenge,
    }
}

fn gateway_failure(e: GatewayError) -> ShopError {
    match e {
        GatewayError::Unavailable(e) => ShopError::Unavailable(e.context("payment gateway")),
        other => ShopError::Internal(anyhow::Error::new(other).context("payment gateway")),
    }
}

fn parse_checkout_key(raw: &str) -> Result<String, ShopError> {
    let ok = (1..=64).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(ShopError::validation(
            "checkout_key",
            "1 to 64 characters of letters, digits, - and _",
        ))
    }
}

fn parse_country(field: &'static str, raw: &str) -> Result<String, ShopError> {
    let country = raw.trim().to_uppercase();
    if country.len() == 2 && country.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(country)
    } else {
        Err(ShopError::validation(field, "choose a country"))
    }
}
