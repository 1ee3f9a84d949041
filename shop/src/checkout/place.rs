//! Step: turn the account's cart into an order (stock reserved, cart emptied) and pay it.

use deadpool_postgres::GenericClient;
use serde_json::json;

use super::orders::{self, NewOrder};
use super::{Checkout, CheckoutRequest, Order};
use crate::accounts::Identity;
use crate::error::{ShopError, is_unique_violation};
use crate::gateway::GatewayError;

/// A cart line as the order takes it, with the product's current price and stock.
struct CartLine {
    product_id: i64,
    sku: String,
    name: String,
    quantity: i32,
    price_minor: i64,
    currency: String,
    stock: i32,
}

impl Checkout {
    #[tracing::instrument(name = "Checkout", skip_all, fields(account_id = identity.account_id))]
    pub async fn place(&self, identity: &Identity, request: CheckoutRequest) -> Result<Order, ShopError> {
        let key = parse_checkout_key(&request.checkout_key)?;
        let shipping = parse_country("shipping_country", &request.shipping_country)?;
        let billing = parse_country("billing_country", &request.billing_country)?;
        if let Some(existing) = self.existing(identity, &key).await? {
            return self.advance(existing).await;
        }
        let card = self.gateway.tokenise(request.card).await.map_err(|e| match e {
            GatewayError::InvalidCard(why) => ShopError::validation("card", why),
            other => super::gateway_failure(other),
        })?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let lines = take_cart_lines(&tx, identity.account_id).await?;
        if lines.is_empty() {
            // Either the cart is empty, or a concurrent submission of this very form
            // has just turned it into an order: then finish that order.
            drop(tx);
            drop(client);
            return match self.existing(identity, &key).await? {
                Some(existing) => self.advance(existing).await,
                None => Err(ShopError::EmptyCart),
            };
        }
        let mut total: i64 = 0;
        for line in &lines {
            if line.quantity > line.stock {
                return Err(ShopError::OutOfStock {
                    name: line.name.clone(),
                    available: line.stock,
                });
            }
            total += line.price_minor * i64::from(line.quantity);
        }
        let public_id = format!("ord_{}", ulid::Ulid::new().to_string().to_lowercase());
        let new = NewOrder {
            public_id: &public_id,
            account_id: identity.account_id,
            checkout_key: &key,
            total_minor: total,
            currency: &lines[0].currency,
            shipping_country: &shipping,
            billing_country: &billing,
            card: &card,
            device_id: request.device.device_id.as_deref(),
            ip: request.device.ip.as_deref(),
            user_agent: request.device.user_agent.as_deref(),
        };
        let order_id = match orders::insert(&tx, &new).await {
            Ok(id) => id,
            // A concurrent submission of the same form won the race: finish that one.
            Err(e) if is_unique_violation(&e, "customer_order_checkout_key_key") => {
                drop(tx);
                drop(client);
                let existing = self.existing(identity, &key).await?.ok_or(ShopError::InvalidState)?;
                return self.advance(existing).await;
            }
            Err(e) => return Err(e.into()),
        };
        for line in &lines {
            orders::insert_line(
                &tx,
                order_id,
                line.product_id,
                &line.sku,
                &line.name,
                line.quantity,
                line.price_minor,
            )
            .await?;
            reserve_stock(&tx, line.product_id, line.quantity).await?;
        }
        orders::record_placed(
            &tx,
            order_id,
            json!({"total_minor": total, "currency": lines[0].currency}),
        )
        .await?;
        tx.commit().await?;
        let order = orders::by_public_id(&client, &public_id).await?;
        drop(client);
        self.advance(order).await
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
}

/// Empties the account's cart and returns what it held, the products locked until the
/// transaction ends. Deleting first is what makes two checkouts of one cart make one
/// order: the second waits on the first's deletion and then finds nothing. (Reading
/// the lines and deleting them later let both read the same cart.) If the order is not
/// placed, the rollback puts the lines back.
async fn take_cart_lines(tx: &impl GenericClient, account_id: i64) -> Result<Vec<CartLine>, ShopError> {
    let rows = tx
        .query(
            "with taken as (
               delete from cart_item i using cart c
                where c.cart_id = i.cart_id and c.account_id = $1
               returning i.product_id, i.quantity)
             select p.product_id, p.sku, p.name, t.quantity, p.price_minor, p.currency, p.stock
               from taken t join product p using (product_id)
              order by p.product_id for update of p",
            &[&account_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CartLine {
            product_id: r.get("product_id"),
            sku: r.get("sku"),
            name: r.get("name"),
            quantity: r.get("quantity"),
            price_minor: r.get("price_minor"),
            currency: r.get("currency"),
            stock: r.get("stock"),
        })
        .collect())
}

async fn reserve_stock(tx: &impl GenericClient, product_id: i64, quantity: i32) -> Result<(), ShopError> {
    tx.execute(
        "update product set stock = stock - $2 where product_id = $1",
        &[&product_id, &quantity],
    )
    .await?;
    Ok(())
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
