//! Order pages: confirmation, my orders, the verification step, the dev mailbox.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use super::{Layout, PageError, login_redirect, redirect, render};
use crate::checkout::verification::{MailboxMessage, mailbox as read_mailbox};
use crate::checkout::{Order, OrderStatus, VerifyOutcome};
use crate::error::ShopError;
use crate::routes::money;
use crate::session::Session;
use crate::startup::AppState;

#[derive(Template)]
#[template(path = "order.html")]
struct OrderPage {
    layout: Layout,
    order: Order,
    lines: Vec<(String, i32, String)>,
    total: String,
}

#[derive(Template)]
#[template(path = "orders.html")]
struct OrdersPage {
    layout: Layout,
    orders: Vec<(String, String, &'static str, String)>,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    layout: Layout,
    order_id: String,
    email: String,
    total: String,
    error: Option<String>,
}

struct Mail {
    recipient: String,
    subject: String,
    body: String,
    when: String,
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    layout: Layout,
    messages: Vec<Mail>,
}

#[derive(Deserialize)]
pub struct VerifyForm {
    csrf_token: String,
    code: String,
}

pub async fn show(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    order_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let Some(identity) = &session.identity else {
        return Ok(login_redirect(&format!("/orders/{order_id}")));
    };
    let order = state.checkout.order_for(identity, &order_id).await?;
    let page = OrderPage {
        layout: Layout::new(&session, &state),
        lines: order
            .lines
            .iter()
            .map(|l| {
                (
                    l.name.clone(),
                    l.quantity,
                    money(l.unit_price_minor * i64::from(l.quantity), &order.currency),
                )
            })
            .collect(),
        total: money(order.total_minor, &order.currency),
        order,
    };
    render(&page, StatusCode::OK)
}

pub async fn list(state: web::Data<AppState>, session: web::ReqData<Session>) -> Result<HttpResponse, PageError> {
    let Some(identity) = &session.identity else {
        return Ok(login_redirect("/orders"));
    };
    let orders = state.checkout.orders_for(identity).await?;
    let page = OrdersPage {
        layout: Layout::new(&session, &state),
        orders: orders
            .into_iter()
            .map(|o| {
                let date = o.created_at.date().to_string();
                (o.public_id, date, o.status.as_str(), money(o.total_minor, &o.currency))
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}

async fn verify_page(
    state: &AppState,
    session: &Session,
    order: &Order,
    error: Option<String>,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let email = session.identity.as_ref().map(|i| i.email.clone()).unwrap_or_default();
    let page = VerifyPage {
        layout: Layout::new(session, state),
        order_id: order.public_id.clone(),
        email,
        total: money(order.total_minor, &order.currency),
        error,
    };
    render(&page, status)
}

pub async fn verify_form(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    order_id: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let Some(identity) = &session.identity else {
        return Ok(login_redirect(&format!("/orders/{order_id}/verify")));
    };
    let order = state.checkout.order_for(identity, &order_id).await?;
    if order.status != OrderStatus::AwaitingVerification {
        return Ok(redirect(&format!("/orders/{}", order.public_id)));
    }
    verify_page(&state, &session, &order, None, StatusCode::OK).await
}

pub async fn verify(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    order_id: web::Path<String>,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, PageError> {
    session.verify_csrf(&form.csrf_token)?;
    let Some(identity) = &session.identity else {
        return Ok(login_redirect(&format!("/orders/{order_id}/verify")));
    };
    match state.checkout.verify(identity, &order_id, &form.code).await {
        Ok(VerifyOutcome::Passed(order)) | Ok(VerifyOutcome::Failed(order)) => {
            Ok(redirect(&format!("/orders/{}", order.public_id)))
        }
        Ok(VerifyOutcome::WrongCode { remaining }) => {
            let order = state.checkout.order_for(identity, &order_id).await?;
            let message = format!("That code is not right. {remaining} attempts left.");
            verify_page(
                &state,
                &session,
                &order,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ShopError::InvalidState) => Ok(redirect(&format!("/orders/{order_id}"))),
        Err(e) => Err(e.into()),
    }
}

/// `?to=address`: one recipient's messages only (a load test's many shoppers each
/// finding their own code among the newest 50).
#[derive(Deserialize)]
pub struct MailboxQuery {
    to: Option<String>,
}

pub async fn mailbox(
    state: web::Data<AppState>,
    session: web::ReqData<Session>,
    query: web::Query<MailboxQuery>,
) -> Result<HttpResponse, PageError> {
    if !state.mailbox_enabled {
        return Err(ShopError::NotFound.into());
    }
    let client = state.pool.get().await.map_err(ShopError::from)?;
    let to = query.to.as_deref().map(str::trim).filter(|to| !to.is_empty());
    let messages: Vec<MailboxMessage> = read_mailbox(&client, to).await?;
    let page = MailboxPage {
        layout: Layout::new(&session, &state),
        messages: messages
            .into_iter()
            .map(|m| Mail {
                when: m.created_at.time().to_string(),
                recipient: m.recipient,
                subject: m.subject,
                body: m.body,
            })
            .collect(),
    };
    render(&page, StatusCode::OK)
}
