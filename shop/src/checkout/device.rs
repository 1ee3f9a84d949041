//! What the shop knows of the shopper's browser, sent to the sidecar. Built here and
//! nowhere else, so every value the sidecar sees went through the same cleaning.

use actix_web::HttpRequest;
use shared::limits::MAX_ID_CHARS;

#[derive(Debug, Clone, Default)]
pub struct DeviceContext {
    pub ip: Option<String>,
    pub device_id: Option<String>,
    pub user_agent: Option<String>,
}

impl DeviceContext {
    /// From a request: the client's IP, the device id the caller vouches for, and the
    /// user agent.
    pub fn from_request(req: &HttpRequest, trust_forwarded_for: bool, device_id: Option<&str>) -> DeviceContext {
        DeviceContext {
            ip: crate::routes::client_ip(req, trust_forwarded_for),
            device_id: device_id.map(|d| d.chars().take(MAX_ID_CHARS).collect()),
            user_agent: req
                .headers()
                .get("user-agent")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        }
    }
}
