//! Start-up: open the store, apply migrations, load the key, wire the service, bind the port.
//! [`Application::build`] binds port 0 in tests and tells the port; `run_until_stopped` serves
//! and schedules until SIGTERM, SIGINT or [`Application::stopper`] says stop.

use std::net::TcpListener;
use std::path::Path;
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
use crate::crypto::{CryptoError, KeyRing, Sealed};
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
    /// The key file is gone while the store holds values sealed under one of its keys: a
    /// new key could not open them.
    #[error(
        "key file {path} is missing, but the store holds values sealed under key {key_id}: \
         restore that key file (or set crypto.key_file to where it is); a new key would not \
         open them"
    )]
    MissingKeyFile {
        /// Where the key file was looked for.
        path: String,
        /// The key the store needs.
        key_id: String,
    },
    /// The port could not be bound.
    #[error("cannot listen on {0}: {1}")]
    Bind(String, std::io::Error),
}

/// Opens and migrates the configured store.
pub async fn open_store(settings: &Settings) -> Result<Store, StoreError> {
    let store = Store::connect(
        &settings.store_url(),
        settings.store.max_connections,
        settings.store.statement_timeout,
    )
    .await?
    .with_event_log(&settings.store.events_url, &settings.store.events_prefix)?;
    store.migrate().await?;
    Ok(store)
}

/// Opens the key file. It is created only for a store that holds nothing sealed yet: the
/// external ID is sealed before anything else, so a store without one has no sealed value.
async fn open_keys(settings: &Settings, store: &Store) -> Result<KeyRing, StartupError> {
    let path = settings.key_file();
    if path.exists() {
        return Ok(KeyRing::load(&path)?);
    }
    match store.external_id().await? {
        None => Ok(KeyRing::create(&path)?),
        Some(sealed) => Err(missing_key_file(&path, &sealed)),
    }
}

fn missing_key_file(path: &Path, sealed: &Sealed) -> StartupError {
    StartupError::MissingKeyFile {
        path: path.display().to_string(),
        key_id: sealed.key_id().unwrap_or("unknown").to_owned(),
    }
}

/// What `check-config` says of the key file, changing nothing: whether it opens the store's
/// external ID (sealed before anything else), as `serve` will need it to.
pub async fn check_keys(settings: &Settings) -> Result<String, StartupError> {
    let path = settings.key_file();
    let keys = if path.exists() {
        Some(KeyRing::load(&path)?)
    } else {
        None
    };
    let sealed = match Store::open_existing(&settings.store_url(), settings.store.statement_timeout)
        .await?
    {
        Some(store) => {
            let sealed = store.external_id_if_any().await;
            store.close().await;
            sealed?
        }
        None => None,
    };
    let file = path.display();
    Ok(match (keys, sealed) {
        (Some(keys), Some(sealed)) => {
            keys.open(&sealed)?;
            format!("key file {file}: opens the store's sealed values")
        }
        (Some(_), None) => format!("key file {file}: readable; the store holds nothing sealed"),
        (None, None) => format!("key file {file}: absent; the first start makes it"),
        (None, Some(sealed)) => return Err(missing_key_file(&path, &sealed)),
    })
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
            settings.aws.operation_timeout,
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
        let keys = open_keys(&settings, &store).await?;
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let app = App::new(store, keys, aws, &settings, stop.clone(), tasks.clone()).await?;
        let token_file = settings.admin_token_file();
        if tokens::create_initial_admin(app.store().pool(), &token_file).await? {
            tracing::warn!(path = %token_file.display(), "wrote the first admin token");
        } else if tokens::retire_initial_admin_file(app.store().pool(), &token_file).await? {
            tracing::info!(path = %token_file.display(), "removed the first admin token's file");
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
        let sockets = web::Data::new(graphql::Sockets::new(
            settings.server.max_subscriptions_per_socket,
            settings.server.max_sockets_per_token,
        ));
        let max_body = settings.server.max_body_bytes;
        let server = HttpServer::new(move || {
            HttpApp::new()
                .app_data(data.clone())
                .app_data(schema.clone())
                .app_data(answers.clone())
                .app_data(sockets.clone())
                .configure(|cfg| graphql::configure(cfg, max_body))
                .configure(crate::api::console::configure)
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
