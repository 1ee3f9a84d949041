//! Catalogue search and paging, the API cart.

use reqwest::StatusCode;

use crate::helpers::*;

#[tokio::test]
async fn the_catalogue_searches_filters_and_pages() {
    let app = spawn_app(Risk::Disabled).await;
    let all = app.get("/api/products?per_page=10", None).await;
    assert_eq!(all.status, StatusCode::OK);
    let total = all.body["total"].as_i64().expect("total");
    assert!(total >= 30, "demo catalogue loaded: {total}");
    assert_eq!(all.body["products"].as_array().map(Vec::len), Some(10));
    let page2 = app.get("/api/products?per_page=10&page=2", None).await;
    assert_ne!(all.body["products"][0]["sku"], page2.body["products"][0]["sku"]);

    let found = app.get("/api/products?q=espresso", None).await;
    assert_eq!(found.body["total"], 1);
    assert_eq!(found.body["products"][0]["sku"], "HM-3001");
    let prefix = app.get("/api/products?q=key", None).await;
    assert_eq!(
        prefix.body["products"][0]["name"], "Mechanical keyboard",
        "prefix search"
    );
    let books = app.get("/api/products?category=books&per_page=50", None).await;
    assert!(
        books.body["products"]
            .as_array()
            .expect("list")
            .iter()
            .all(|p| p["category"] == "books")
    );
    let odd = app
        .get("/api/products?q=%27%29%3B%20drop%20table%20product%3B--", None)
        .await;
    assert_eq!(odd.status, StatusCode::OK, "{}", odd.body);
    assert_eq!(odd.body["total"], 0);
    let bad = app.get("/api/products?page=abc", None).await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);

    let product = app.get("/api/products/BK-2001", None).await;
    assert_eq!(product.body["price_minor"], 3995);
    assert_eq!(app.get("/api/products/NOPE", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_cart_sets_quantities_and_refuses_bad_ones() {
    let app = spawn_app(Risk::Disabled).await;
    let token = app.shopper().await;
    assert_eq!(app.put_in_cart(&token, BOOK, 2).await.status, StatusCode::OK);
    let cart = app.put_in_cart(&token, "GR-5004", 3).await;
    assert_eq!(cart.body["total_minor"], 2 * 3995 + 3 * 349);
    let cart = app.put_in_cart(&token, BOOK, 0).await;
    assert_eq!(
        cart.body["lines"].as_array().map(Vec::len),
        Some(1),
        "0 removes the line"
    );
    assert_eq!(
        app.put_in_cart(&token, BOOK, 100).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        app.put_in_cart(&token, BOOK, -1).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(app.put_in_cart(&token, "NOPE", 1).await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/cart", None).await.status, StatusCode::UNAUTHORIZED);
}
