//! Orders and their explicit states; every change of state is a row in `order_event`.

use deadpool_postgres::GenericClient;
use serde::Serialize;
use time::OffsetDateTime;

use crate::error::ShopError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    /// Placed, stock reserved, payment not settled.
    Pending,
    /// The sidecar asked for a one-time code before capture.
    AwaitingVerification,
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
            OrderStatus::Paid => "paid",
            OrderStatus::Rejected => "rejected",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> OrderStatus {
        match s {
            "awaiting_verification" => OrderStatus::AwaitingVerification,
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
    pub needs_review: bool,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub lines: Vec<OrderLine>,
}

const ORDER_COLUMNS: &str = "order_id, public_id, account_id, status, total_minor, currency, shipping_country,
    billing_country, card_last4, card_token, card_fingerprint, card_bin, device_id, ip, needs_review, created_at";

fn order(row: &tokio_postgres::Row) -> Order {
    Order {
        order_id: row.get(0),
        public_id: row.get(1),
        account_id: row.get(2),
        status: OrderStatus::parse(row.get(3)),
        total_minor: row.get(4),
        currency: row.get(5),
        shipping_country: row.get(6),
        billing_country: row.get(7),
        card_last4: row.get(8),
        card_token: row.get(9),
        card_fingerprint: row.get(10),
        card_bin: row.get(11),
        device_id: row.get(12),
        ip: row.get(13),
        needs_review: row.get(14),
        created_at: row.get(15),
        lines: Vec::new(),
    }
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
            sku: r.get(0),
            name: r.get(1),
            quantity: r.get(2),
            unit_price_minor: r.get(3),
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
        .get(0);
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
