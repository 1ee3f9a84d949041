//! The sandbox gateway's HTTP face.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::Deserialize;
use serde_json::json;

use super::{Books, BooksError, CardInput, Operation};

/// A running sandbox gateway. In a test it runs on a thread and runtime of its own,
/// like the separate process it is in production.
pub struct SandboxGateway {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub books: Arc<Books>,
    handle: actix_web::dev::ServerHandle,
}

impl SandboxGateway {
    /// Starts on a free loopback port with a random fingerprint key.
    pub fn start() -> SandboxGateway {
        let key: [u8; 32] = rand::random();
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        Self::serve(listener, &key, 1).expect("the sandbox gateway starts")
    }

    /// Serves on `listener` until stopped.
    pub fn serve(listener: TcpListener, fingerprint_key: &[u8], workers: usize) -> std::io::Result<SandboxGateway> {
        let url = format!("http://{}", listener.local_addr()?);
        let books = Arc::new(Books::new(fingerprint_key));
        let data = web::Data::from(Arc::clone(&books));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(routes))
                    .workers(workers)
                    .disable_signals()
                    .listen(listener);
                match server {
                    Ok(server) => {
                        let server = server.run();
                        let _ = tx.send(Ok(server.handle()));
                        let _ = server.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        });
        let handle = rx
            .recv()
            .map_err(|_| std::io::Error::other("the sandbox gateway thread died"))??;
        Ok(SandboxGateway { url, books, handle })
    }

    /// Waits until the server stops (the binary's main).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.handle.clone()
    }
}

impl Drop for SandboxGateway {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/v1/tokens", web::post().to(tokenise))
        .route("/v1/authorisations", web::post().to(authorise))
        .route("/v1/authorisations", web::get().to(find))
        .route("/v1/authorisations/{id}/{operation}", web::post().to(settle))
        .route("/v1/events", web::get().to(events))
        .route("/test/disputes", web::post().to(open_dispute))
        .route("/test/disputes/{id}/close", web::post().to(close_dispute))
        .route(
            "/healthz",
            web::get().to(|| async { HttpResponse::Ok().json(json!({"status": "ok"})) }),
        );
}

fn error(status: StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"error": {"code": code, "message": message}}))
}

fn idempotency_key(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .filter(|k| (1..=255).contains(&k.len()))
        .map(str::to_owned)
}

fn key_required() -> HttpResponse {
    error(
        StatusCode::BAD_REQUEST,
        "idempotency_key_required",
        "send an Idempotency-Key",
    )
}

async fn tokenise(books: web::Data<Books>, body: web::Bytes) -> HttpResponse {
    // Parsed by hand: serde's messages would quote the number back.
    let Ok(card) = serde_json::from_slice::<CardInput>(&body) else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected {number, exp_month, exp_year, cvc}",
        );
    };
    match books.tokenise(&card) {
        Ok(token) => HttpResponse::Created().json(token),
        Err(invalid) => error(StatusCode::UNPROCESSABLE_ENTITY, invalid.code, invalid.message),
    }
}

#[derive(Deserialize)]
struct AuthoriseBody {
    token: String,
    amount_minor: i64,
    currency: String,
}

async fn authorise(books: web::Data<Books>, req: HttpRequest, body: web::Json<AuthoriseBody>) -> HttpResponse {
    let Some(key) = idempotency_key(&req) else {
        return key_required();
    };
    match books.authorise(&key, &body.token, body.amount_minor, &body.currency) {
        Ok(a) => HttpResponse::Ok().json(a),
        Err(_) => error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_token",
            "no card with this token",
        ),
    }
}

async fn settle(books: web::Data<Books>, req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (id, operation) = path.into_inner();
    let Some(operation) = Operation::parse(&operation) else {
        return error(StatusCode::NOT_FOUND, "not_found", "no such operation");
    };
    let Some(key) = idempotency_key(&req) else {
        return key_required();
    };
    match books.settle(operation, &key, &id) {
        Ok(a) => HttpResponse::Ok().json(json!({"authorisation_id": a.authorisation_id, "status": a.status})),
        Err(BooksError::WrongState(status)) => HttpResponse::Conflict().json(json!({
            "error": {"code": "wrong_state", "message": "the authorisation is not in a state for this"},
            "status": status,
        })),
        Err(_) => error(StatusCode::NOT_FOUND, "not_found", "no such authorisation"),
    }
}

#[derive(Deserialize)]
struct FindQuery {
    idempotency_key: String,
}

async fn find(books: web::Data<Books>, query: web::Query<FindQuery>) -> HttpResponse {
    match books.authorisation(&query.idempotency_key) {
        Some(a) => HttpResponse::Ok().json(a),
        None => error(StatusCode::NOT_FOUND, "not_found", "no such authorisation"),
    }
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: u64,
}

async fn events(books: web::Data<Books>, query: web::Query<EventsQuery>) -> HttpResponse {
    HttpResponse::Ok().json(json!({"events": books.events(query.after, 100)}))
}

#[derive(Deserialize)]
struct OpenDispute {
    authorisation_id: String,
    reason: String,
}

async fn open_dispute(books: web::Data<Books>, body: web::Json<OpenDispute>) -> HttpResponse {
    match books.open_dispute(&body.authorisation_id, &body.reason) {
        Ok(d) => HttpResponse::Created().json(d),
        Err(BooksError::WrongState(state)) => HttpResponse::Conflict().json(json!({
            "error": {"code": "wrong_state", "message": "only a captured payment can be disputed, with a lower-case reason"},
            "status": state,
        })),
        Err(_) => error(StatusCode::NOT_FOUND, "not_found", "no such authorisation"),
    }
}

#[derive(Deserialize)]
struct CloseDispute {
    outcome: String,
}

async fn close_dispute(
    books: web::Data<Books>,
    path: web::Path<String>,
    body: web::Json<CloseDispute>,
) -> HttpResponse {
    let won = match body.outcome.as_str() {
        "won" => true,
        "lost" => false,
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_outcome",
                "outcome is won or lost",
            );
        }
    };
    match books.close_dispute(&path, won) {
        Ok(d) => HttpResponse::Ok().json(d),
        Err(BooksError::WrongState(state)) => HttpResponse::Conflict().json(json!({
            "error": {"code": "wrong_state", "message": "the dispute is closed already"},
            "status": state,
        })),
        Err(_) => error(StatusCode::NOT_FOUND, "not_found", "no such dispute"),
    }
}
