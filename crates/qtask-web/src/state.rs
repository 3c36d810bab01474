//! What every request shares: settings, stores, measured rates, the report source.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::ReportSource;
use crate::config::Config;
use crate::error::Fail;
use crate::html::Chrome;
use crate::rate::Rates;
use crate::stores::{Pools, Runs};

/// The server's shared state.
pub(crate) struct AppState {
    pub config: Config,
    /// The address actually bound (the port may have been chosen by the system).
    pub addr: SocketAddr,
    pub pools: Pools,
    pub runs: Runs,
    pub rates: Rates,
    pub reports: Option<Arc<dyn ReportSource>>,
}

impl AppState {
    pub(crate) fn chrome(&self) -> Chrome {
        Chrome {
            store: self.pools.shown(),
            token: self.config.token.is_some(),
            read_only: self.config.read_only,
        }
    }
}

/// Runs `f` (store calls: blocking) on tokio's blocking threads, giving up after the
/// configured store timeout (the call itself finishes in the background).
pub(crate) async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, Fail> + Send + 'static,
) -> Result<T, Fail> {
    let st = state.clone();
    let limit = state.config.store_timeout;
    match tokio::time::timeout(limit, tokio::task::spawn_blocking(move || f(&st))).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(Fail::Internal(format!("the request failed: {e}"))),
        Err(_) => Err(Fail::Unreachable(format!(
            "the store did not answer within {} s",
            limit.as_secs_f64()
        ))),
    }
}
