//! The outermost middleware: DNS-rebinding protection, JSON rendering of every
//! error (routing errors included), panic containment and the request log.

use std::{
    panic::AssertUnwindSafe,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

use futures_util::FutureExt;
use poem::{
    Endpoint, IntoResponse, Request, Response,
    error::{MethodNotAllowedError, NotFoundError},
    http::header,
};
use tracing::Instrument;

use crate::error::AppError;

/// Host names accepted in the `Host` header, lower-cased, without port.
#[derive(Debug, Clone)]
pub struct AllowedHosts(Arc<Vec<String>>);

impl AllowedHosts {
    /// Builds the list of the loopback names plus `extra` (from
    /// `MIND_LITE_ALLOWED_HOSTS`).
    pub fn new(extra: &[String]) -> Self {
        let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "[::1]"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        // A configured port is ignored, as it is in the request's Host.
        hosts.extend(
            extra
                .iter()
                .map(|host| strip_port(host.trim()).to_ascii_lowercase())
                .filter(|host| !host.is_empty()),
        );
        Self(Arc::new(hosts))
    }

    fn allows(&self, host_header: &str) -> bool {
        let host = strip_port(host_header.trim()).to_ascii_lowercase();
        self.0.contains(&host)
    }
}

/// Removes a trailing `:port` from a host, keeping IPv6 brackets. Anything
/// after `]` other than a port is kept, so such a value matches no allowed
/// host.
fn strip_port(host: &str) -> &str {
    let name_end = if host.starts_with('[') {
        host.find(']').map_or(host.len(), |end| end + 1)
    } else {
        host.rfind(':').unwrap_or(host.len())
    };
    match host[name_end..].strip_prefix(':') {
        Some(port) if port.chars().all(|c| c.is_ascii_digit()) => &host[..name_end],
        _ => host,
    }
}

/// Rejects a request unless its one `Host` header, and the authority of an
/// absolute-form target if there is one, name an allowed host.
fn check_host(request: &Request, allowed_hosts: &AllowedHosts) -> Result<(), AppError> {
    let mut host_headers = request.headers().get_all(header::HOST).iter();
    let host_header = host_headers.next();
    if host_headers.next().is_some() {
        return Err(AppError::Rejected {
            status: poem::http::StatusCode::BAD_REQUEST,
            message: "request has more than one Host header; send exactly one".to_owned(),
        });
    }

    let mut hosts: Vec<String> = Vec::new();
    if let Some(value) = host_header {
        hosts.push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    if let Some(authority) = request.uri().authority() {
        hosts.push(authority.to_string());
    }
    if hosts.is_empty() {
        hosts.push(String::new());
    }
    match hosts.into_iter().find(|host| !allowed_hosts.allows(host)) {
        Some(host) => Err(AppError::ForbiddenHost { host }),
        None => Ok(()),
    }
}

static NEXT_REQUEST_ID: AtomicU64 = AtomicU64::new(1);

/// Logs a request whose future is dropped before it produced a response: the
/// client disconnected, or shutdown stopped waiting for it. A write that was
/// cut off this way rolls back with its transaction.
struct InFlight {
    request_id: u64,
    finished: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if !self.finished {
            tracing::warn!(
                request_id = self.request_id,
                "request cancelled before a response was sent (client disconnected or \
                 shutdown timeout elapsed)"
            );
        }
    }
}

/// Runs one request through the host check and the endpoint, turns any error
/// or panic into the JSON error shape, and logs one line per request.
pub async fn guard<E: Endpoint>(
    endpoint: Arc<E>,
    request: Request,
    allowed_hosts: AllowedHosts,
) -> poem::Result<Response> {
    let request_id = NEXT_REQUEST_ID.fetch_add(1, Ordering::Relaxed);
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let span = tracing::info_span!("request", request_id, %method, %path);

    async move {
        let started = Instant::now();
        let mut in_flight = InFlight {
            request_id,
            finished: false,
        };
        let response = handle(&*endpoint, request, &allowed_hosts).await;
        in_flight.finished = true;
        let status = response.status();
        let latency_ms = (started.elapsed().as_secs_f64() * 1_000_000.0).round() / 1000.0;
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), latency_ms, "request failed");
        } else {
            tracing::info!(status = status.as_u16(), latency_ms, "request served");
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

async fn handle<E: Endpoint>(
    endpoint: &E,
    request: Request,
    allowed_hosts: &AllowedHosts,
) -> Response {
    if let Err(error) = check_host(&request, allowed_hosts) {
        tracing::warn!(%error, "rejected request for its Host header");
        return error.to_response();
    }

    let method = request.method().to_string();
    let path = request.uri().path().to_owned();
    let outcome = AssertUnwindSafe(endpoint.call(request))
        .catch_unwind()
        .await;
    match outcome {
        Ok(Ok(output)) => output.into_response(),
        Ok(Err(error)) => render_error(error, method, path),
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|text| (*text).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            AppError::Internal(anyhow::anyhow!("handler panicked: {message}")).to_response()
        }
    }
}

/// Converts an error that reached the top into a JSON error response.
fn render_error(error: poem::Error, method: String, path: String) -> Response {
    if error.is::<AppError>() || error.is_from_response() {
        return error.into_response();
    }
    if error.is::<NotFoundError>() {
        return AppError::NotFound.to_response();
    }
    if error.is::<MethodNotAllowedError>() {
        return AppError::MethodNotAllowed { method, path }.to_response();
    }

    let status = error.status();
    if status.is_server_error() {
        return AppError::Internal(anyhow::anyhow!("{error}")).to_response();
    }
    // Errors raised by poem itself, such as an invalid query parameter.
    AppError::Rejected {
        status,
        message: error.to_string(),
    }
    .to_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_with_any_port_are_allowed() {
        let hosts = AllowedHosts::new(&[]);
        for host in [
            "localhost",
            "LOCALHOST:8000",
            "127.0.0.1:1",
            "[::1]",
            "[::1]:8000",
        ] {
            assert!(hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn foreign_hosts_are_rejected() {
        let hosts = AllowedHosts::new(&[]);
        for host in [
            "evil.example",
            "evil.example:8000",
            "127.0.0.2",
            "localhost.evil",
            "",
        ] {
            assert!(!hosts.allows(host), "{host}");
        }
    }

    #[test]
    fn configured_hosts_are_allowed() {
        let hosts = AllowedHosts::new(&[" Notes.Local ".to_owned()]);
        assert!(hosts.allows("notes.local:8000"));
    }

    #[test]
    fn configured_host_port_is_ignored() {
        let hosts = AllowedHosts::new(&["notes.local:8117".to_owned()]);
        assert!(hosts.allows("notes.local"));
        assert!(hosts.allows("notes.local:9000"));
    }

    #[test]
    fn text_after_ipv6_brackets_is_rejected() {
        let hosts = AllowedHosts::new(&[]);
        for host in ["[::1]evil.example", "[::1]:80x", "[::1"] {
            assert!(!hosts.allows(host), "{host}");
        }
    }
}
