//! The server's settings.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::WebError;

/// The default address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8765";

/// What `qtask ui` serves and how.
#[derive(Debug, Clone)]
pub struct Config {
    /// The task store URL (`sqlite:PATH`, `postgres://...`, `mongodb://...`).
    pub store: String,
    /// The runs store (`file:PATH` or `http://HOST:PORT`); `None`: `QTASK_TRACKING_URI`,
    /// `MLFLOW_TRACKING_URI`, else `file:mlruns`.
    pub tracking_uri: Option<String>,
    /// Where to listen (port 0: any free port).
    pub bind: SocketAddr,
    /// When set, actions need `Authorization: Bearer TOKEN`; required off loopback.
    pub token: Option<String>,
    /// Refuse every action.
    pub read_only: bool,
    /// How long one store call may take before the page says the store does not answer.
    pub store_timeout: Duration,
}

impl Config {
    /// Settings for `store` with the defaults: loopback, no token, actions allowed.
    pub fn new(store: &str) -> Config {
        Config {
            store: store.to_string(),
            tracking_uri: None,
            bind: DEFAULT_BIND.parse().expect("valid default address"),
            token: None,
            read_only: false,
            store_timeout: Duration::from_secs(10),
        }
    }

    /// Checks the settings: a non-loopback address needs a token, a token is not empty.
    pub fn check(&self) -> Result<(), WebError> {
        if let Some(t) = &self.token
            && (t.trim().is_empty() || t.chars().any(char::is_control))
        {
            return Err(WebError::Config(
                "--token must be non-empty text without control characters".into(),
            ));
        }
        if !self.bind.ip().is_loopback() && self.token.is_none() {
            return Err(WebError::Config(format!(
                "binding {} exposes the dashboard beyond this machine: give --token TOKEN (only loopback addresses may run without one)",
                self.bind
            )));
        }
        qtask_pool::StoreUrl::parse(&self.store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_loopback_needs_a_token() {
        let mut c = Config::new("sqlite:x.db");
        c.check().unwrap();
        c.bind = "0.0.0.0:8765".parse().unwrap();
        let err = c.check().unwrap_err().to_string();
        assert!(err.contains("--token"), "{err}");
        c.token = Some("s3cret".into());
        c.check().unwrap();
        c.token = Some(" ".into());
        assert!(c.check().is_err());
        c.bind = "[::1]:0".parse().unwrap();
        c.token = None;
        c.check().unwrap();
    }

    #[test]
    fn a_bad_store_url_is_refused() {
        let err = Config::new("qtask.db").check().unwrap_err().to_string();
        assert!(err.contains("qtask.db"), "{err}");
    }
}
