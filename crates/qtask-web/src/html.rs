//! Page skeleton and the small pieces every page uses. Every value goes through [`esc`].

use std::fmt::Write;

use chrono::{DateTime, Utc};
pub(crate) use qtask_report::escape as esc;

use crate::error::Fail;

/// What the layout needs to know about the server.
pub(crate) struct Chrome {
    /// The task store, as shown.
    pub store: String,
    /// Whether actions need a token.
    pub token: bool,
    /// Whether actions are refused.
    pub read_only: bool,
}

/// Which menu entry is current.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Pools,
    Experiments,
}

/// A whole page: `title` in the tab and the heading, `body` already escaped HTML.
pub(crate) fn layout(chrome: &Chrome, nav: Nav, title: &str, subtitle: &str, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    let link = |n: Nav, href: &str, label: &str| {
        let cur = if n == nav { r#" class="cur""# } else { "" };
        format!(r#"<a href="{href}"{cur}>{label}</a>"#)
    };
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>{title} · qtask</title><link rel="stylesheet" href="/static/app.css"><script src="/static/app.js" defer></script></head><body data-token="{token}" data-read-only="{ro}"><div class="topbar"><div class="inner"><a class="brand" href="/">qtask</a><nav>{pools}{exps}</nav><span class="store mono" title="task store">{store}</span><form id="token-form" class="token" hidden><input id="token-input" type="password" placeholder="API token" autocomplete="off" aria-label="API token"><button type="submit">Set token</button></form></div></div><main><header><h1>{title}</h1>{sub}</header>{body}</main><footer>qtask ui{ro_note}</footer></body></html>"#,
        title = esc(title),
        token = u8::from(chrome.token),
        ro = u8::from(chrome.read_only),
        pools = link(Nav::Pools, "/", "Pools"),
        exps = link(Nav::Experiments, "/experiments", "Experiments"),
        store = esc(&chrome.store),
        sub = if subtitle.is_empty() {
            String::new()
        } else {
            format!(r#"<p class="meta">{subtitle}</p>"#)
        },
        ro_note = if chrome.read_only {
            " · read-only"
        } else {
            ""
        },
    );
    out
}

/// The page of a failed request: what went wrong, and for an unreachable store, that the
/// page tries again by itself.
pub(crate) fn fail_page(chrome: &Chrome, nav: Nav, fail: &Fail) -> String {
    let (title, extra) = match fail {
        Fail::NotFound(_) => ("Not found", ""),
        Fail::Unreachable(_) => (
            "Store unreachable",
            r#"<p class="meta" id="retrying" data-retry="5">This page tries again every 5 seconds.</p>"#,
        ),
        Fail::BadRequest(_) => ("Bad request", ""),
        Fail::Conflict(_) => ("Conflict", ""),
        Fail::Unauthorized => ("Token needed", ""),
        Fail::Forbidden(_) => ("Refused", ""),
        Fail::Internal(_) => ("Error", ""),
    };
    let body = format!(
        r#"<section class="problem" id="problem"><p><b>{}</b></p>{extra}<p><a href="/">Back to the pools</a></p></section>"#,
        esc(&fail.message())
    );
    layout(chrome, nav, title, "", &body)
}

/// A card with a heading.
pub(crate) fn card(id: &str, heading: &str, body: &str) -> String {
    format!(
        r#"<section id="{id}"><h2>{}</h2>{body}</section>"#,
        esc(heading)
    )
}

/// A status pill; `status` is a task status or an MLflow run status.
pub(crate) fn pill(status: &str) -> String {
    let cls = match status.to_ascii_lowercase().as_str() {
        "done" | "finished" => "done",
        "failed" | "killed" => "failed",
        "running" => "running",
        "waiting" | "scheduled" => "waiting",
        "part_done" => "part",
        _ => "",
    };
    format!(r#"<span class="pill {cls}">{}</span>"#, esc(status))
}

/// `2026-01-02 03:04:05` UTC, or a dash.
pub(crate) fn time(t: Option<DateTime<Utc>>) -> String {
    match t {
        Some(t) => format!(
            r#"<time datetime="{}">{}</time>"#,
            t.to_rfc3339(),
            t.format("%Y-%m-%d %H:%M:%S")
        ),
        None => dash(),
    }
}

/// `3m 05s` style age of a duration in seconds (non-negative).
pub(crate) fn age(secs: f64) -> String {
    qtask_report::fmt_duration(Some(secs.max(0.0)))
}

/// The placeholder for a missing value.
pub(crate) fn dash() -> String {
    format!(r#"<span class="muted">{}</span>"#, qtask_report::MISSING)
}

/// A number with thousands separators: `1,234,567`.
pub(crate) fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Text cut to `max` characters with an ellipsis.
pub(crate) fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut s: String = text.chars().take(max.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// A path segment or query value, percent-encoded (everything but unreserved characters).
pub(crate) fn url_part(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// An artifact path for a URL: each folder encoded, the slashes kept.
pub(crate) fn url_path(path: &str) -> String {
    path.split('/').map(url_part).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_urls() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(url_part("a b/<c>"), "a%20b%2F%3Cc%3E");
        assert_eq!(url_path("sig/ic x.parquet"), "sig/ic%20x.parquet");
        assert_eq!(cut("abcdef", 4), "abc…");
    }

    #[test]
    fn the_page_escapes_its_title_and_store() {
        let chrome = Chrome {
            store: "sqlite:<b>.db".into(),
            token: true,
            read_only: false,
        };
        let html = layout(&chrome, Nav::Pools, "<script>x</script>", "", "");
        assert!(!html.contains("<script>x"), "{html}");
        assert!(html.contains("&lt;script&gt;x"));
        assert!(html.contains("sqlite:&lt;b&gt;.db"));
        assert!(html.contains(r#"data-token="1""#));
    }
}
