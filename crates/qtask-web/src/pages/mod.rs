//! The HTML pages.

pub(crate) mod overview;
pub(crate) mod pool;
pub(crate) mod runs;
pub(crate) mod task;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use crate::error::Fail;
use crate::html::{Nav, fail_page};
use crate::state::{AppState, blocking};

/// An HTML response.
pub(crate) fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

/// The page of a failed request, with its status code.
pub(crate) fn fail_response(state: &AppState, nav: Nav, fail: &Fail) -> Response {
    html(fail.status(), fail_page(&state.chrome(), nav, fail))
}

/// Renders a page on a blocking thread (pages read the stores).
pub(crate) async fn render(
    state: Arc<AppState>,
    nav: Nav,
    f: impl FnOnce(&AppState) -> Result<String, Fail> + Send + 'static,
) -> Response {
    match blocking(&state, f).await {
        Ok(body) => html(StatusCode::OK, body),
        Err(fail) => fail_response(&state, nav, &fail),
    }
}

/// Any path without a route.
pub(crate) async fn not_found(State(state): State<Arc<AppState>>, uri: Uri) -> Response {
    let fail = Fail::NotFound(format!("nothing at {}", uri.path()));
    if uri.path().starts_with("/api/") {
        crate::api::fail_json(&fail)
    } else {
        fail_response(&state, Nav::Pools, &fail)
    }
}
