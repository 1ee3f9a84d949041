//! Orders and their explicit states; every change of state is a row in `order_event`.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::ShopError;
use crate::gateway::CardToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, stock reserved, payment not settled.
    Pending,
    /// The sidecar asked for a one-time code before capture.
    AwaitingVerification,
    /// Authorised and held for a person to decide (the sidecar refused our request);
    /// nothing captured.
    InReview,
    Paid,
    /// Declined by the gateway, blocked, or verification failed or expired.
    Rejected,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::AwaitingVerification => "awaiting_verification",
            OrderStatus::InReview => "in_review",
            OrderStatus::Paid => "paid",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "awaiting_verification" => OrderStatus::AwaitingVerification,
            "in_review" => OrderStatus::InReview,
            "paid" => OrderStatus::Paid,
            "rejected" => OrderStatus::Rejected,
            "cancelled" => OrderStatus::Cancelled,
            _ => OrderStatus::Pending,
        }
    }

    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Paid | OrderStatus::Rejected | OrderStatus::Cancelled)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OrderLine {
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Order {
    #[serde(skip)]
    pub order_id: i64,
    #[serde(rename = "order_id")]
    pub public_id: String,
    #[serde(skip)]
    pub account_id: i64,
    pub status: OrderStatus,
    pub total_minor: i64,
    pub currency: String,
    pub shipping_country: String,
    pub billing_country: String,
    pub card_last4: String,
    #[serde(skip)]
    pub card_token: String,
    #[serde(skip)]
    pub card_fingerprint: String,
    #[serde(skip)]
    pub card_bin: String,
    #[serde(skip)]
    pub device_id: Option<String>,
    #[serde(skip)]
    pub ip: Option<String>,
    #[serde(skip)]
    pub user_agent: Option<String>,
    /// For staff: a fallback or a refusal decided. Never shown to the shopper.
    #[serde(skip)]
    pub needs_review: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub lines: Vec<OrderLine>,
}

const ORDER_COLUMNS: &str = "order_id, public_id, account_id, status, total_minor, currency, shipping_country,
    billing_country, card_last4, card_token, card_fingerprint, card_bin, device_id, ip, user_agent, needs_review, created_at";

fn order(row: &tokio_postgres::Row) -> Order {
    Order {
        order_id: row.get("order_id"),
        public_id: row.get("public_id"),
        account_id: row.get("account_id"),
        status: OrderStatus::parse(row.get("status")),
        total_minor: row.get("total_minor"),
        currency: row.get("currency"),
        shipping_country: row.get("shipping_country"),
        billing_country: row.get("billing_country"),
        card_last4: row.get("card_last4"),
        card_token: row.get("card_token"),
        card_fingerprint: row.get("card_fingerprint"),
        card_bin: row.get("card_bin"),
        device_id: row.get("device_id"),
        ip: row.get("ip"),
        user_agent: row.get("user_agent"),
        needs_review: row.get("needs_review"),
        created_at: row.get("created_at"),
        lines: Vec::new(),
    }
}

/// What a new order is made of.
pub struct NewOrder<'a> {
    pub public_id: &'a str,
    pub account_id: i64,
    pub checkout_key: &'a str,
    pub total_minor: i64,
    pub currency: &'a str,
    pub shipping_country: &'a str,
    pub billing_country: &'a str,
    pub card: &'a CardToken,
    pub device_id: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

/// Inserts a `pending` order; its id. The raw error is returned so that the caller
/// can tell a concurrent submission of the same form (the checkout key's unique key).
pub async fn insert(tx: &impl GenericClient, new: &NewOrder<'_>) -> Result<i64, tokio_postgres::Error> {
    let row = tx
        .query_one(
            "insert into customer_order (public_id, account_id, checkout_key, status, total_minor, currency,
               shipping_country, billing_country, card_token, card_fingerprint, card_bin, card_last4, device_id, ip,
               user_agent)
             values ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) returning order_id",
            &[
                &new.public_id,
                &new.account_id,
                &new.checkout_key,
                &new.total_minor,
                &new.currency,
                &new.shipping_country,
                &new.billing_country,
                &new.card.token,
                &new.card.fingerprint,
                &new.card.bin,
                &new.card.last4,
                &new.device_id,
                &new.ip,
                &new.user_agent,
            ],
        )
        .await?;
    Ok(row.get("order_id"))
}

pub async fn insert_line(
    tx: &impl GenericClient,
    order_id: i64,
    product_id: i64,
    sku: &str,
    name: &str,
    quantity: i32,
    unit_price_minor: i64,
) -> Result<(), ShopError> {
    tx.execute(
        "insert into order_item (order_id, product_id, sku, name, quantity, unit_price_minor)
         values ($1, $2, $3, $4, $5, $6)",
        &[&order_id, &product_id, &sku, &name, &quantity, &unit_price_minor],
    )
    .await?;
    Ok(())
}

/// The order's first event.
pub async fn record_placed(tx: &impl GenericClient, order_id: i64, detail: serde_json::Value) -> Result<(), ShopError> {
    tx.execute(
        "insert into order_event (order_id, from_status, to_status, detail) values ($1, null, 'pending', $2)",
        &[&order_id, &detail],
    )
    .await?;
    Ok(())
}

/// Puts the order in the review queue.
pub async fn mark_for_review(client: &impl GenericClient, order_id: i64) -> Result<(), ShopError> {
    client
        .execute(
            "update customer_order set needs_review = true, updated_at = now() where order_id = $1",
            &[&order_id],
        )
        .await?;
    Ok(())
}

/// Orders nobody is waiting for: `pending` for longer than `older_than`, or awaiting
/// a code that has been decided (expired, failed, passed) without the order moving on.
pub async fn stale(client: &impl GenericClient, older_than: std::time::Duration) -> Result<Vec<String>, ShopError> {
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
    Ok(rows.iter().map(|r| r.get("public_id")).collect())
}

pub async fn by_public_id(client: &impl GenericClient, public_id: &str) -> Result<Order, ShopError> {
    let row = client
        .query_opt(
            &format!("select {ORDER_COLUMNS} from customer_order where public_id = $1"),
            &[&public_id],
        )
        .await?
        .ok_or(ShopError::NotFound)?;
    with_lines(client, order(&row)).await
}

pub async fn by_checkout_key(client: &impl GenericClient, key: &str) -> Result<Option<Order>, ShopError> {
    let row = client
        .query_opt(
            &format!("select {ORDER_COLUMNS} from customer_order where checkout_key = $1"),
            &[&key],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(with_lines(client, order(&row)).await?)),
        None => Ok(None),
    }
}

pub async fn for_account(client: &impl GenericClient, account_id: i64) -> Result<Vec<Order>, ShopError> {
    let rows = client
        .query(
            &format!(
                "select {ORDER_COLUMNS} from customer_order where account_id = $1 order by created_at desc limit 100"
            ),
            &[&account_id],
        )
        .await?;
    Ok(rows.iter().map(order).collect())
}

async fn with_lines(client: &impl GenericClient, mut order: Order) -> Result<Order, ShopError> {
    let rows = client
        .query(
            "select sku, name, quantity, unit_price_minor from order_item where order_id = $1 order by name",
            &[&order.order_id],
        )
        .await?;
    order.lines = rows
        .iter()
        .map(|r| OrderLine {
            sku: r.get("sku"),
            name: r.get("name"),
            quantity: r.get("quantity"),
            unit_price_minor: r.get("unit_price_minor"),
        })
        .collect();
    Ok(order)
}

/// Moves the order to `to` if it is in one of `from`, with its event, and releases the
/// reserved stock when the order ends unpaid. Returns whether this call made the move
/// (two concurrent requests cannot both make it).
pub async fn transition(
    tx: &impl GenericClient,
    order_id: i64,
    from: &[OrderStatus],
    to: OrderStatus,
    detail: serde_json::Value,
) -> Result<bool, ShopError> {
    let old: String = tx
        .query_opt(
            "select status from customer_order where order_id = $1 for update",
            &[&order_id],
        )
        .await?
        .ok_or(ShopError::NotFound)?
        .get("status");
    if !from.contains(&OrderStatus::parse(&old)) {
        return Ok(false);
    }
    tx.execute(
        "update customer_order set status = $2, updated_at = now() where order_id = $1",
        &[&order_id, &to.as_str()],
    )
    .await?;
    tx.execute(
        "insert into order_event (order_id, from_status, to_status, detail) values ($1, $2, $3, $4)",
        &[&order_id, &old, &to.as_str(), &detail],
    )
    .await?;
    if matches!(to, OrderStatus::Rejected | OrderStatus::Cancelled) {
        tx.execute(
            "update product p set stock = p.stock + i.quantity from order_item i
              where i.order_id = $1 and i.product_id = p.product_id",
            &[&order_id],
        )
        .await?;
    }
    Ok(true)
}
