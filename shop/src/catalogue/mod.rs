//! Products, categories and carts.

mod cart;

pub use cart::{Cart, CartLine, CartOwner, Carts};

use deadpool_postgres::Pool;
use serde::Serialize;

use crate::error::ShopError;

pub const PAGE_SIZE_MAX: i64 = 50;

#[derive(Debug, Clone, Serialize)]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub category: String,
    pub price_minor: i64,
    pub currency: String,
    pub stock: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Category {
    pub slug: String,
    pub name: String,
}

#[derive(Debug, Clone, Default)]
pub struct ProductQuery {
    pub q: Option<String>,
    pub category: Option<String>,
    pub page: i64,
    pub per_page: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProductPage {
    pub products: Vec<Product>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

impl ProductPage {
    pub fn pages(&self) -> i64 {
        let per_page = self.per_page.max(1);
        (self.total / per_page + i64::from(self.total % per_page != 0)).max(1)
    }
}

/// No catalogue has this many pages; larger page numbers are read as this one.
const PAGE_MAX: i64 = 1_000_000;

const PRODUCT_COLUMNS: &str = "p.sku, p.name, p.description, c.slug, p.price_minor, p.currency, p.stock";

fn product(row: &tokio_postgres::Row) -> Product {
    Product {
        sku: row.get(0),
        name: row.get(1),
        description: row.get(2),
        category: row.get(3),
        price_minor: row.get(4),
        currency: row.get::<_, String>(5),
        stock: row.get(6),
    }
}

#[derive(Clone)]
pub struct Catalogue {
    pool: Pool,
}

// === impl Catalogue ===

impl Catalogue {
    pub fn new(pool: Pool) -> Catalogue {
        Catalogue { pool }
    }

    /// Search by words in name or description (all must match, by prefix), by category,
    /// one page at a time, in name order.
    #[tracing::instrument(name = "List products", skip_all, fields(page = query.page))]
    pub async fn list(&self, query: &ProductQuery) -> Result<ProductPage, ShopError> {
        let per_page = query.per_page.clamp(1, PAGE_SIZE_MAX);
        // Far past the last page is an empty page, never an overflow.
        let page = query.page.clamp(1, PAGE_MAX);
        let words: Vec<String> = query
            .q
            .as_deref()
            .unwrap_or("")
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .take(8)
            .map(|w| format!("{}:*", w.to_lowercase()))
            .collect();
        let tsquery = words.join(" & ");
        let category = query.category.clone().filter(|c| !c.is_empty());
        let client = self.pool.get().await?;
        let filter = "($1 = '' or to_tsvector('simple', p.name || ' ' || p.description) @@ to_tsquery('simple', $1))
                      and ($2::text is null or c.slug = $2)";
        let total: i64 = client
            .query_one(
                &format!("select count(*) from product p join category c using (category_id) where {filter}"),
                &[&tsquery, &category],
            )
            .await?
            .get(0);
        let rows = client
            .query(
                &format!(
                    "select {PRODUCT_COLUMNS} from product p join category c using (category_id)
                      where {filter} order by p.name, p.sku limit $3 offset $4"
                ),
                &[&tsquery, &category, &per_page, &(page - 1).saturating_mul(per_page)],
            )
            .await?;
        Ok(ProductPage {
            products: rows.iter().map(product).collect(),
            page,
            per_page,
            total,
        })
    }

    pub async fn product(&self, sku: &str) -> Result<Product, ShopError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "select {PRODUCT_COLUMNS} from product p join category c using (category_id) where p.sku = $1"
                ),
                &[&sku],
            )
            .await?
            .ok_or(ShopError::NotFound)?;
        Ok(product(&row))
    }

    pub async fn categories(&self) -> Result<Vec<Category>, ShopError> {
        let client = self.pool.get().await?;
        let rows = client
            .query("select slug, name from category order by name", &[])
            .await?;
        Ok(rows
            .iter()
            .map(|r| Category {
                slug: r.get(0),
                name: r.get(1),
            })
            .collect())
    }
}
