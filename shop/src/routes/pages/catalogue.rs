//! The catalogue and product pages.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, PageError, render};
use crate::catalogue::{Category, Product, ProductQuery};
use crate::routes::money;
use crate::session::Session;
use crate::startup::AppState;

const PER_PAGE: i64 = 12;

struct ProductCard {
    sku: String,
    name: String,
    description: String,
    price: String,
    in_stock: bool,
}

#[derive(Template)]
#[template(path = "catalogue.html")]
struct CataloguePage {
    layout: Layout,
    q: String,
    category: String,
    categories: Vec<Category>,
    products: Vec<ProductCard>,
    page: i64,
    pages: i64,
}

#[derive(Template)]
#[template(path = "product.html")]
struct ProductPage {
    layout: Layout,
    product: Product,
    price: String,
}

#[derive(Deserialize)]
pub struct IndexQuery {
    q: Option<String>,
    category: Option<String>,
    page: Option<i64>,
}

pub async fn index(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    query: web::Query<IndexQuery>,
) -> Result<HttpResponse, PageError> {
    let query = query.into_inner();
    let found = state
        .catalogue
        .list(&ProductQuery {
            q: query.q.clone(),
            category: query.category.clone(),
            page: query.page.unwrap_or(1),
            per_page: PER_PAGE,
        })
        .await?;
    let page = CataloguePage {
        layout: Layout::new(&session, &state),
        q: query.q.unwrap_or_default(),
        category: query.category.unwrap_or_default(),
        categories: state.catalogue.categories().await?,
        pages: found.pages(),
        page: found.page,
        products: found
            .products
            .into_iter()
            .map(|p| ProductCard {
                price: money(p.price_minor, &p.currency),
                in_stock: p.stock > 0,
                sku: p.sku,
                name: p.name,
                description: p.description,
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}

pub async fn product(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    sku: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let product = state.catalogue.product(&sku).await?;
    let page = ProductPage {
        layout: Layout::new(&session, &state),
        price: money(product.price_minor, &product.currency),
        product,
    };
    render(&page, StatusCode::OK)
}
