//! `shop/openapi.yaml` is kept true: its operations are the ones served, its error codes
//! the ones sent, its order schema the fields an order has.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helpers::*;

fn document() -> Value {
    let text = std::fs::read_to_string(repo_path("shop/openapi.yaml")).expect("openapi.yaml exists");
    serde_yaml::from_str(&text).expect("openapi.yaml is YAML")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_every_api_route_is_documented() {
    let doc = document();
    let app = spawn_app(Risk::Disabled).await;
    let mut documented = BTreeSet::new();
    for (path, operations) in doc["paths"].as_object().expect("paths") {
        for method in operations.as_object().expect("operations").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
            let url = app.url(&path.replace("{sku}", "BK-2001").replace("{order_id}", "ord_x"));
            let response = app
                .http
                .request(method.to_uppercase().parse().expect("method"), url)
                .send()
                .await
                .expect("sent");
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(
                status != 405 && !(status == 404 && body.contains("\"not_found\"") && !path.contains('{')),
                "{method} {path} is documented but not served ({status})"
            );
        }
    }
    let served: BTreeSet<String> = [
        "POST /api/auth/signup",
        "POST /api/auth/login",
        "POST /api/auth/refresh",
        "POST /api/auth/logout",
        "GET /api/products",
        "GET /api/products/{sku}",
        "GET /api/cart",
        "PUT /api/cart/items/{sku}",
        "POST /api/checkout",
        "GET /api/orders",
        "GET /api/orders/{order_id}",
        "POST /api/orders/{order_id}/verify",
        "GET /healthz",
        "GET /readyz",
        "GET /metrics",
    ]
    .map(String::from)
    .into();
    assert_eq!(documented, served);
    let unknown = app.get("/api/nothing-here", None).await;
    assert_eq!(unknown.status.as_u16(), 404);
    assert_eq!(unknown.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn documented_error_codes_and_order_fields_match_the_server() {
    let doc = document();
    let codes: BTreeSet<String> =
        doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]
            .as_array()
            .expect("error code enum")
            .iter()
            .map(|c| c.as_str().expect("string").to_owned())
            .collect();
    let errors = [
        shop::error::ShopError::validation("f", "m"),
        shop::error::ShopError::Unauthenticated,
        shop::error::ShopError::BadCredentials,
        shop::error::ShopError::Csrf,
        shop::error::ShopError::NotFound,
        shop::error::ShopError::EmailTaken,
        shop::error::ShopError::RateLimited { retry_after_secs: 1 },
        shop::error::ShopError::OutOfStock {
            name: "x".into(),
            available: 0,
        },
        shop::error::ShopError::EmptyCart,
        shop::error::ShopError::InvalidState,
        shop::error::ShopError::PayloadTooLarge { limit_bytes: 1 },
        shop::error::ShopError::Unavailable(anyhow::anyhow!("x")),
        shop::error::ShopError::Internal(anyhow::anyhow!("x")),
    ];
    let sent: BTreeSet<String> = errors.iter().map(|e| e.code().to_owned()).collect();
    assert_eq!(codes, sent);

    let app = spawn_app(Risk::Disabled).await;
    let (_, order) = app.buy(BOOK).await;
    let fields: BTreeSet<String> = order.body.as_object().expect("order").keys().cloned().collect();
    let documented: BTreeSet<String> = doc["components"]["schemas"]["Order"]["properties"]
        .as_object()
        .expect("order schema")
        .keys()
        .cloned()
        .collect();
    assert_eq!(fields, documented);
}
