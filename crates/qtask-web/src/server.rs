//! The HTTP server: routes, the runtime thread, start and stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

use crate::config::Config;
use crate::error::WebError;
use crate::rate::Rates;
use crate::state::AppState;
use crate::stores::{Pools, Runs};
use crate::{ReportSource, api, assets, guard, pages};

/// A configured dashboard, not yet listening.
pub struct Server {
    config: Config,
    reports: Option<Arc<dyn ReportSource>>,
}

/// A dashboard serving on its own thread.
pub struct Running {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<Result<(), std::io::Error>>>,
}

fn routes(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(pages::overview::page))
        .route("/pools/{pool}", get(pages::pool::page))
        .route("/pools/{pool}/tasks/{id}", get(pages::task::page))
        .route("/experiments", get(pages::runs::experiments))
        .route("/experiments/{name}", get(pages::runs::experiment))
        .route("/experiments/{name}/report", get(pages::runs::report))
        .route("/runs/{run_id}", get(pages::runs::run))
        .route(
            "/runs/{run_id}/artifacts/{*path}",
            get(pages::runs::artifact),
        )
        .route("/runs/{run_id}/preview/{*path}", get(pages::runs::preview))
        .route("/static/app.css", get(assets::css))
        .route("/static/app.js", get(assets::js))
        .route("/favicon.ico", get(assets::icon))
        .route("/api/pools", get(api::pools))
        .route("/api/pools/{pool}", get(api::pool))
        .route("/api/pools/{pool}/tasks", get(api::tasks))
        .route("/api/pools/{pool}/tasks/{id}", get(api::task))
        .route("/api/pools/{pool}/tasks/{id}/{action}", post(api::action))
        .route("/api/experiments", get(api::experiments))
        .route("/api/experiments/{name}/runs", get(api::runs))
        .route("/api/runs/{run_id}", get(api::run))
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}

impl Server {
    /// Checks the settings (see [`Config::check`]); `reports` serves the report pages.
    pub fn new(config: Config, reports: Option<Arc<dyn ReportSource>>) -> Result<Server, WebError> {
        config.check()?;
        Ok(Server { config, reports })
    }

    /// Binds the address and serves on a new thread.
    pub fn start(self) -> Result<Running, WebError> {
        let shown = self.config.bind.to_string();
        let bind_err = |source| WebError::Bind {
            addr: shown.clone(),
            source,
        };
        let listener = std::net::TcpListener::bind(self.config.bind).map_err(bind_err)?;
        listener.set_nonblocking(true).map_err(bind_err)?;
        let addr = listener.local_addr().map_err(bind_err)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("qtask-ui")
            .build()
            .map_err(bind_err)?;
        let state = Arc::new(AppState {
            pools: Pools::new(&self.config.store),
            runs: Runs::new(self.config.tracking_uri.as_deref()),
            rates: Rates::default(),
            reports: self.reports,
            addr,
            config: self.config,
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("qtask-ui".into())
            .spawn(move || {
                // The last reference to the state is dropped here, after the runtime has
                // stopped: a PostgreSQL handle closes its connection by blocking, which
                // must not happen on the runtime's thread.
                let keep = state.clone();
                let served = runtime.block_on(async move {
                    // A first reading of every pool, so the done rate has a start.
                    let seed = state.clone();
                    tokio::task::spawn_blocking(move || {
                        let _ = pages::overview::rows(&seed);
                    });
                    let listener = tokio::net::TcpListener::from_std(listener)?;
                    axum::serve(listener, routes(state))
                        .with_graceful_shutdown(async {
                            let _ = stopped.await;
                        })
                        .await
                });
                drop(runtime);
                drop(keep);
                served
            })
            .map_err(bind_err)?;
        Ok(Running {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Binds the address and serves until the process ends.
    pub fn run(self) -> Result<(), WebError> {
        self.start()?.wait();
        Ok(())
    }
}

impl Running {
    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks until the server stops (it stops only when told to, or with the process).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Stops serving (in-flight requests finish first) and waits for the thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.shutdown();
    }
}
