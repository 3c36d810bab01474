//! Tracking URIs (`file:PATH`, a plain path, `http://host:port`) and `file://` URI helpers.

use std::path::{Path, PathBuf};

use crate::error::{RecordError, Result};

/// Environment variable read when no `--tracking-uri` is given.
pub const ENV_TRACKING_URI: &str = "QTASK_TRACKING_URI";
/// MLflow's own variable, honoured after [`ENV_TRACKING_URI`].
pub const ENV_MLFLOW_TRACKING_URI: &str = "MLFLOW_TRACKING_URI";
/// The store used when nothing is configured (as MLflow: `mlruns` in the working directory).
pub const DEFAULT_TRACKING_URI: &str = "file:mlruns";

/// Where runs are kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrackingUri {
    /// An MLflow file store rooted at this folder.
    File(PathBuf),
    /// An MLflow tracking server (base URL without a trailing `/`).
    Http(String),
}

impl TrackingUri {
    /// Parses `file:PATH`, `file:///abs`, a plain path, or `http(s)://host[:port][/prefix]`.
    pub fn parse(uri: &str) -> Result<TrackingUri> {
        let bad = |message: &str| RecordError::BadUri {
            uri: uri.to_string(),
            message: message.to_string(),
        };
        let trimmed = uri.trim();
        if trimmed.is_empty() {
            return Err(bad("is empty"));
        }
        if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
            let base = trimmed.trim_end_matches('/');
            let host = base.split_once("://").map(|x| x.1).unwrap_or("");
            if host.is_empty() || host.starts_with('/') {
                return Err(bad("has no host"));
            }
            return Ok(TrackingUri::Http(base.to_string()));
        }
        if let Some(rest) = trimmed.strip_prefix("file:") {
            return Ok(TrackingUri::File(file_uri_path(rest).map_err(|m| bad(&m))?));
        }
        if let Some((scheme, _)) = trimmed.split_once(':')
            && scheme.len() > 1
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        {
            return Err(bad(&format!(
                "scheme `{scheme}` is not supported (use file:PATH or http://host:port)"
            )));
        }
        Ok(TrackingUri::File(PathBuf::from(trimmed)))
    }

    /// Picks the tracking URI: `explicit` (from `--tracking-uri`), else `QTASK_TRACKING_URI`,
    /// else `MLFLOW_TRACKING_URI`, else `file:mlruns`.
    pub fn resolve(explicit: Option<&str>) -> Result<TrackingUri> {
        let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let chosen = explicit
            .map(str::to_string)
            .or_else(|| from_env(ENV_TRACKING_URI))
            .or_else(|| from_env(ENV_MLFLOW_TRACKING_URI))
            .unwrap_or_else(|| DEFAULT_TRACKING_URI.to_string());
        TrackingUri::parse(&chosen)
    }
}

/// The path of the part after `file:` (`///abs`, `//localhost/abs`, `rel`, `/abs`).
fn file_uri_path(rest: &str) -> std::result::Result<PathBuf, String> {
    let path = match rest.strip_prefix("//") {
        Some(after) => {
            let (host, path) = after.split_at(after.find('/').unwrap_or(after.len()));
            if !host.is_empty() && host != "localhost" {
                return Err(format!("remote file host `{host}` is not supported"));
            }
            path.to_string()
        }
        None => rest.to_string(),
    };
    if path.is_empty() {
        return Err("has no path".into());
    }
    Ok(PathBuf::from(percent_decode(&path)))
}

/// `file:///abs/path` for an absolute path, percent-encoding what a URI cannot hold (as
/// Python's `pathlib.Path.as_uri` does).
pub fn path_to_file_uri(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::from("file://");
    if !text.starts_with('/') {
        out.push('/');
    }
    out.push_str(&percent_encode(&text, true));
    out
}

/// The local path of a `file:` URI, or `None` for any other scheme.
pub fn file_uri_to_path(uri: &str) -> Option<PathBuf> {
    uri.strip_prefix("file:")
        .and_then(|rest| file_uri_path(rest).ok())
}

/// Percent-encodes everything but unreserved characters (and `/` when `keep_slash`).
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_slash && b == b'/');
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi * 16 + lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_uri_forms() {
        assert_eq!(
            TrackingUri::parse("file:mlruns").unwrap(),
            TrackingUri::File("mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("file:///tmp/my%20runs").unwrap(),
            TrackingUri::File("/tmp/my runs".into())
        );
        assert_eq!(
            TrackingUri::parse("/data/mlruns").unwrap(),
            TrackingUri::File("/data/mlruns".into())
        );
        assert_eq!(
            TrackingUri::parse("http://127.0.0.1:5000/").unwrap(),
            TrackingUri::Http("http://127.0.0.1:5000".into())
        );
        let err = TrackingUri::parse("sqlite:///x.db")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("sqlite:///x.db") && err.contains("not supported"),
            "{err}"
        );
        assert!(TrackingUri::parse("http://").is_err());
        assert!(TrackingUri::parse("file://otherhost/x").is_err());
    }

    #[test]
    fn file_uris_round_trip() {
        let p = Path::new("/tmp/a b/ü");
        let uri = path_to_file_uri(p);
        assert_eq!(uri, "file:///tmp/a%20b/%C3%BC");
        assert_eq!(file_uri_to_path(&uri).unwrap(), p);
        assert_eq!(file_uri_to_path("mlflow-artifacts:/1/x"), None);
    }
}
