//! HTTP routes: thin handlers over the decision service.

mod admin;
mod body;
mod decide;
mod feedback;
mod get_decision;
mod health;

use actix_web::web;

pub use admin::reload;
pub use decide::{Edge, decide};
pub use feedback::{feedback, outcome};
pub use get_decision::get_decision;
pub use health::{healthz, metrics, not_found, readyz};

/// Every route of the sidecar, for the server and for tests alike.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/v1/decisions").route(web::post().to(decide)))
        .service(web::resource("/v1/decisions/{transaction_id}").route(web::get().to(get_decision)))
        .service(web::resource("/v1/decisions/{transaction_id}/outcome").route(web::post().to(outcome)))
        .service(web::resource("/v1/feedback").route(web::post().to(feedback)))
        .service(web::resource("/healthz").route(web::get().to(healthz)))
        .service(web::resource("/readyz").route(web::get().to(readyz)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/admin/reload").route(web::post().to(reload)));
}
