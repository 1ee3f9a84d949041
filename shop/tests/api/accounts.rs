//! Sign-up, log-in, refresh rotation, log-out, limits.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

fn refresh_cookie(answer: &Answer) -> String {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("shop_refresh="))
        .expect("a refresh cookie")
        .to_owned()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .expect("pair")
        .trim_start_matches("shop_refresh=")
        .to_owned()
}

async fn refresh(app: &TestApp, token: &str) -> Answer {
    let request = app
        .http
        .post(app.url("/api/auth/refresh"))
        .header("Cookie", format!("shop_refresh={token}"));
    app.send(request).await
}

#[tokio::test]
async fn sign_up_stores_an_argon2id_hash_and_sets_a_locked_down_refresh_cookie() {
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__AUTH__COOKIE_SECURE", true)
        .start()
        .await;
    let email = unique_email();

    let answer = app
        .post("/api/auth/signup", None, &json!({"email": email, "password": PASSWORD}))
        .await;

    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["expires_in"], 900);
    let cookie = refresh_cookie(&answer);
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/", "Max-Age=604800"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    let row = app
        .db()
        .await
        .query_one("select password_hash, role from account where email = $1", &[&email])
        .await
        .expect("account");
    let hash: String = row.get(0);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains(PASSWORD));
    assert_eq!(row.get::<_, String>(1), "shopper");
    let token = answer.body["access_token"].as_str().expect("token");
    assert_eq!(app.get("/api/cart", Some(token)).await.status, StatusCode::OK);
}

#[tokio::test]
async fn sign_up_refuses_bad_input_and_a_taken_email() {
    let app = spawn_app(Risk::Disabled).await;
    let email = unique_email();
    for (body, status, field) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            422,
            Some("email"),
        ),
        (json!({"email": email, "password": "short"}), 422, Some("password")),
        (json!({"email": email}), 422, Some("body")),
    ] {
        let answer = app.post("/api/auth/signup", None, &body).await;
        assert_eq!(answer.status.as_u16(), status, "{body}");
        assert_eq!(answer.body["error"]["field"].as_str(), field, "{body}");
    }
    app.post("/api/auth/signup", None, &json!({"email": email, "password": PASSWORD}))
        .await;
    let again = app
        .post(
            "/api/auth/signup",
            None,
            &json!({"email": email.to_uppercase(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.body["error"]["code"], "email_taken");
}

#[tokio::test]
async fn log_in_checks_the_password_and_says_nothing_about_which_part_was_wrong() {
    let app = spawn_app(Risk::Disabled).await;
    let email = unique_email();
    app.post("/api/auth/signup", None, &json!({"email": email, "password": PASSWORD}))
        .await;

    let wrong = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": email, "password": "wrong password!"}),
        )
        .await;
    let nobody = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    let right = app
        .post("/api/auth/login", None, &json!({"email": email, "password": PASSWORD}))
        .await;

    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong.body, nobody.body,
        "same answer for a wrong password and no account"
    );
    assert_eq!(right.status, StatusCode::OK);
    assert!(right.body["access_token"].is_string());
}

#[tokio::test]
async fn refresh_rotates_and_a_stolen_old_token_revokes_the_family() {
    let app = spawn_app(Risk::Disabled).await;
    let email = unique_email();
    let signed = app
        .post("/api/auth/signup", None, &json!({"email": email, "password": PASSWORD}))
        .await;
    let first = cookie_value(&refresh_cookie(&signed));

    let rotated = refresh(&app, &first).await;
    assert_eq!(rotated.status, StatusCode::OK);
    let second = cookie_value(&refresh_cookie(&rotated));
    assert_ne!(first, second, "a new refresh token each time");
    assert!(rotated.body["access_token"].is_string());

    // Within seconds, a reuse is two tabs racing: refused, nothing revoked.
    assert_eq!(refresh(&app, &first).await.status, StatusCode::UNAUTHORIZED);
    let third = cookie_value(&refresh_cookie(&refresh(&app, &second).await));

    // Later, a reuse of a replaced token means it leaked: the whole family dies.
    app.db()
        .await
        .execute(
            "update refresh_token set replaced_at = now() - interval '1 minute' where replaced_at is not null",
            &[],
        )
        .await
        .expect("age");
    assert_eq!(refresh(&app, &first).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&app, &third).await.status,
        StatusCode::UNAUTHORIZED,
        "the newest token of the family is revoked too"
    );
}

#[tokio::test]
async fn log_out_revokes_the_refresh_token() {
    let app = spawn_app(Risk::Disabled).await;
    let signed = app
        .post(
            "/api/auth/signup",
            None,
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    let token = cookie_value(&refresh_cookie(&signed));
    let request = app
        .http
        .post(app.url("/api/auth/logout"))
        .header("Cookie", format!("shop_refresh={token}"));
    let out = app.send(request).await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(refresh_cookie(&out).contains("Max-Age=0"), "the cookie is cleared");
    assert_eq!(refresh(&app, &token).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_or_forged_access_token_is_refused() {
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__AUTH__ACCESS_TTL_SECS", 1)
        .start()
        .await;
    let token = app.shopper().await;
    assert_eq!(app.get("/api/orders", Some(&token)).await.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/orders", Some(&format!("{token}x"))).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get("/api/orders", None).await.status, StatusCode::UNAUTHORIZED);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let expired = app.get("/api/orders", Some(&token)).await;
    assert_eq!(expired.status, StatusCode::UNAUTHORIZED);
    assert_eq!(expired.body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn log_in_attempts_are_limited_per_account() {
    let app = Spawn::new(Risk::Disabled)
        .set("SHOP__AUTH__LOGIN_PER_ACCOUNT_PER_MINUTE", 3)
        .start()
        .await;
    let email = unique_email();
    app.post("/api/auth/signup", None, &json!({"email": email, "password": PASSWORD}))
        .await;
    for _ in 0..3 {
        let answer = app
            .post(
                "/api/auth/login",
                None,
                &json!({"email": email, "password": "guess guess guess"}),
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    }
    let limited = app
        .post("/api/auth/login", None, &json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(limited.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers.contains_key("retry-after"));
    let other = app
        .post(
            "/api/auth/login",
            None,
            &json!({"email": unique_email(), "password": PASSWORD}),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNAUTHORIZED, "another account is not limited");
}
