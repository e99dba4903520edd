//! Start-up: open the store, apply migrations, load the key, wire the service, bind the port.
//! [`Application::build`] binds port 0 in tests and tells the port; `run_until_stopped` serves
//! and schedules until SIGTERM, SIGINT or [`Application::stopper`] says stop.

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{web, App as HttpApp, HttpServer};
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::cache::Answers;
use crate::api::{graphql, rest};
use crate::app::{tokens, App, AppError};
use crate::aws::{AwsApi, SdkAws};
use crate::config::Settings;
use crate::crypto::{CryptoError, KeyRing};
use crate::metrics;
use crate::store::{Store, StoreError};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The store could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The sealing key could not be loaded.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The service could not be wired.
    #[error(transparent)]
    App(#[from] AppError),
    /// The port could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// Opens and migrates the configured store.
pub async fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let store = Store::connect(&settings.store_url(), settings.store.max_connections)
        .await?
        .with_event_log(&settings.store.events_url, &settings.store.events_prefix)?;
    store.migrate().await?;
    Ok(store)
}

/// A daemon ready to serve.
pub struct Application {
    port: u16,
    server: Server,
    app: App,
    // The one shutdown signal: SIGTERM and the stopper cancel it, and every task the daemon
    // spawns stops on it.
    stop: CancellationToken,
    // Every task the daemon spawns, so that stopping waits for each.
    tasks: TaskTracker,
}

impl Application {
    /// Builds the daemon with the real AWS SDK behind it.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let aws = SdkAws::new(
            &settings.aws.region,
            settings.aws_endpoint(),
            settings.aws.max_attempts,
        )
        .await;
        Self::build_with(settings, Arc::new(aws)).await
    }

    /// Builds the daemon with `aws` behind it.
    pub async fn build_with(
        settings: Settings,
        aws: Arc<dyn AwsApi>,
    ) -> Result<Self, StartupError> {
        let store = open_store(&settings).await?;
        let keys = KeyRing::load_or_create(&settings.key_file())?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let app = App::new(store, keys, aws, &settings, stop.clone(), tasks.clone()).await?;
        let token_file = admin_token_file(&settings);
        if tokens::create_initial_admin(app.store().pool(), &token_file).await? {
            tracing::warn!(path = %token_file.display(), "wrote the first admin token");
        }
        let listener = TcpListener::bind(&settings.server.listen)
            .map_err(|e| StartupError::Bind(settings.server.listen.clone(), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| StartupError::Bind(settings.server.listen.clone(), e))?
            .port();
        let data = web::Data::new(app.clone());
        let schema = web::Data::new(graphql::schema());
        let answers = web::Data::new(Answers::default());
        let max_body = settings.server.max_body_bytes;
        let server = HttpServer::new(move || {
            HttpApp::new()
                .app_data(data.clone())
                .app_data(schema.clone())
                .app_data(answers.clone())
                .configure(graphql::configure)
                .wrap(actix_web::middleware::from_fn(metrics::track_http))
                .configure(|cfg| rest::configure(cfg, max_body))
        })
        .disable_signals()
        // In-flight requests get this long once the daemon stops taking new ones.
        .shutdown_timeout(5)
        .listen(listener)
        .map_err(|e| StartupError::Bind(settings.server.listen.clone(), e))?
        .run();
        tracing::info!(port, "listening");
        Ok(Self {
            port,
            server,
            app,
            stop,
            tasks,
        })
    }

    /// The port the API listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The application service.
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Cancelling this token stops the daemon as SIGTERM does.
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Serves and schedules until stopped, then stops taking requests, lets harvests reach a
    /// safe point, waits for every task, and closes the store.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let server = self.tasks.spawn(self.server);
        self.tasks.spawn(self.app.scheduler().run());
        notify_systemd(&[NotifyState::Ready]);
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = terminate() => self.stop.cancel(),
            () = watchdog() => {}
        }
        notify_systemd(&[NotifyState::Stopping]);
        tracing::info!("stopping");
        handle.stop(true).await;
        self.tasks.close();
        self.tasks.wait().await;
        let served = server.await.unwrap_or(Ok(()));
        self.app.store().close().await;
        served
    }
}

/// Tells systemd (`Type=notify`) about the daemon's state; does nothing outside systemd.
fn notify_systemd(state: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// Pings systemd's watchdog at half its timeout, from the runtime itself, so that a stuck
/// runtime stops the pings and systemd restarts the daemon. Never returns.
async fn watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) {
        return std::future::pending().await;
    }
    let mut ticker = tokio::time::interval(std::time::Duration::from_micros(usec / 2));
    loop {
        ticker.tick().await;
        notify_systemd(&[NotifyState::Watchdog]);
    }
}

fn admin_token_file(settings: &Settings) -> PathBuf {
    settings.state.dir.join("admin.token")
}

async fn terminate() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
}
