//! Carts: one per browser before log-in, one per account after; merged at log-in.

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::error::ShopError;

pub const MAX_QUANTITY: i32 = 99;

#[derive(Debug, Clone, Serialize)]
pub struct CartLine {
    pub sku: String,
    pub name: String,
    pub quantity: i32,
    pub unit_price_minor: i64,
    pub currency: String,
    pub stock: i32,
    #[serde(skip)]
    pub product_id: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Cart {
    pub lines: Vec<CartLine>,
    pub total_minor: i64,
    pub currency: String,
}

/// Which cart a request means.
#[derive(Debug, Clone)]
pub enum CartOwner {
    Account(i64),
    Browser(String),
}

#[derive(Clone)]
pub struct Carts {
    pool: Pool,
    currency: String,
}

// === impl Carts ===

impl Carts {
    pub fn new(pool: Pool, currency: String) -> Carts {
        Carts { pool, currency }
    }

    async fn cart_id(&self, client: &deadpool_postgres::Client, owner: &CartOwner) -> Result<String, ShopError> {
        match owner {
            CartOwner::Browser(id) => {
                client
                    .execute("insert into cart (cart_id) values ($1) on conflict do nothing", &[id])
                    .await?;
                Ok(id.clone())
            }
            CartOwner::Account(account_id) => {
                let row = client
                    .query_one(
                        "insert into cart (cart_id, account_id) values ($1, $2)
                         on conflict (account_id) do update set updated_at = now() returning cart_id",
                        &[&format!("acct_{account_id}"), account_id],
                    )
                    .await?;
                Ok(row.get(0))
            }
        }
    }

    pub async fn get(&self, owner: &CartOwner) -> Result<Cart, ShopError> {
        let client = self.pool.get().await?;
        let cart_id = self.cart_id(&client, owner).await?;
        let rows = client
            .query(
                "select p.sku, p.name, i.quantity, p.price_minor, p.currency, p.stock, p.product_id
                   from cart_item i join product p using (product_id)
                  where i.cart_id = $1 order by p.name",
                &[&cart_id],
            )
            .await?;
        let lines: Vec<CartLine> = rows
            .iter()
            .map(|r| CartLine {
                sku: r.get(0),
                name: r.get(1),
                quantity: r.get(2),
                unit_price_minor: r.get(3),
                currency: r.get::<_, String>(4),
                stock: r.get(5),
                product_id: r.get(6),
            })
            .collect();
        let total_minor = lines.iter().map(|l| l.unit_price_minor * i64::from(l.quantity)).sum();
        Ok(Cart {
            lines,
            total_minor,
            currency: self.currency.clone(),
        })
    }

    /// Adds `quantity` (or sets it, with `replace`); zero removes the line. Stock is
    /// checked again at checkout, where it counts.
    #[tracing::instrument(name = "Update cart", skip(self))]
    pub async fn put(&self, owner: &CartOwner, sku: &str, quantity: i32, replace: bool) -> Result<(), ShopError> {
        if !(0..=MAX_QUANTITY).contains(&quantity) {
            return Err(ShopError::validation(
                "quantity",
                format!("between 0 and {MAX_QUANTITY}"),
            ));
        }
        let client = self.pool.get().await?;
        let cart_id = self.cart_id(&client, owner).await?;
        let product_id: i64 = client
            .query_opt("select product_id from product where sku = $1", &[&sku])
            .await?
            .ok_or(ShopError::NotFound)?
            .get(0);
        if quantity == 0 && replace {
            client
                .execute(
                    "delete from cart_item where cart_id = $1 and product_id = $2",
                    &[&cart_id, &product_id],
                )
                .await?;
            return Ok(());
        }
        if quantity == 0 {
            return Ok(());
        }
        let sql = if replace {
            "insert into cart_item (cart_id, product_id, quantity) values ($1, $2, $3)
             on conflict (cart_id, product_id) do update set quantity = excluded.quantity"
        } else {
            "insert into cart_item (cart_id, product_id, quantity) values ($1, $2, $3)
             on conflict (cart_id, product_id) do update set quantity = least(cart_item.quantity + excluded.quantity, 99)"
        };
        client.execute(sql, &[&cart_id, &product_id, &quantity]).await?;
        Ok(())
    }

    /// At log-in: the browser's lines join the account's cart (quantities add up).
    #[tracing::instrument(name = "Merge carts", skip_all)]
    pub async fn merge_into_account(&self, browser_cart: &str, account_id: i64) -> Result<(), ShopError> {
        let mut client = self.pool.get().await?;
        let target = self.cart_id(&client, &CartOwner::Account(account_id)).await?;
        let tx = client.transaction().await?;
        tx.execute(
            "insert into cart_item (cart_id, product_id, quantity)
             select $2, product_id, quantity from cart_item where cart_id = $1
             on conflict (cart_id, product_id) do update set quantity = least(cart_item.quantity + excluded.quantity, 99)",
            &[&browser_cart, &target],
        )
        .await?;
        tx.execute(
            "delete from cart where cart_id = $1 and account_id is null",
            &[&browser_cart],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
