//! Checks on every request (the Host header) and on every action (origin, read-only,
//! token), plus the security headers of every response.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::Fail;
use crate::state::AppState;

/// The policy of the dashboard's own pages: scripts and styles from this server only, so
/// markup that slipped into a value could not run even if it were not escaped.
pub(crate) const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Whether `host` (a Host header) names this machine's loopback interface.
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, p)| {
            if p.chars().all(|c| c.is_ascii_digit()) {
                h
            } else {
                host
            }
        })
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Constant-time comparison, so response times say nothing about how much of a guess matched.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Refuses an action that is not the dashboard's own, allowed and authorised.
pub(crate) fn check_action(state: &AppState, headers: &HeaderMap) -> Result<(), Fail> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if origin != format!("http://{host}") {
            return Err(Fail::Forbidden(format!(
                "refused: the request came from another origin ({origin})"
            )));
        }
    } else if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.to_str().unwrap_or(""), "same-origin" | "none")
    {
        return Err(Fail::Forbidden(
            "refused: the request came from another site".into(),
        ));
    }
    if state.config.read_only {
        return Err(Fail::Forbidden(
            "this dashboard is read-only (started with --read-only)".into(),
        ));
    }
    if let Some(token) = &state.config.token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .unwrap_or("");
        if !same_secret(given.trim().as_bytes(), token.as_bytes()) {
            return Err(Fail::Unauthorized);
        }
    }
    Ok(())
}

/// The middleware: Host check (DNS rebinding) on a loopback server, action checks on every
/// non-GET request, headers on every response.
pub(crate) async fn guard(
    State(state): State<Arc<AppState>>,
    req: Request<Body>,
    next: Next,
) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let refuse = |fail: Fail| {
        if api {
            crate::api::fail_json(&fail)
        } else {
            crate::pages::fail_response(&state, crate::html::Nav::Pools, &fail)
        }
    };
    if state.addr.ip().is_loopback() {
        let host = req
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        if !loopback_host(host) {
            return with_headers(refuse(Fail::Forbidden(format!(
                "refused: this dashboard listens on loopback and does not answer for host {host:?}"
            ))));
        }
    }
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Err(fail) = check_action(&state, req.headers())
    {
        let mut resp = refuse(fail.clone());
        if fail == Fail::Unauthorized {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        return with_headers(resp);
    }
    with_headers(next.run(req).await.into_response())
}

fn with_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(PAGE_CSP));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for ok in [
            "127.0.0.1:8765",
            "localhost:1",
            "LOCALHOST",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8765",
            "10.0.0.1:8765",
            "",
            "localhost.evil.com",
            "[::2]:1",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"ab", b"abc"));
    }
}
