//! Spawning the real daemon on port 0 against a fresh store, and talking to it over HTTP.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use orgsync::app::{tokens, App, Role};
use orgsync::config::{Settings, StoreSettings};
use orgsync::startup::Application;
use orgsync::store::Store;

use crate::aws_stub::AwsStub;
use crate::proxy::FaultProxy;
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Which store a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// The event log in KurrentDB, the read tables in PostgreSQL, as several instances share
    /// them: with the `kurrentdb` feature only.
    #[cfg_attr(not(feature = "kurrentdb"), allow(dead_code))]
    Kurrent,
}

/// Runs an `async fn(Backend)` test on every store: SQLite, PostgreSQL, and, built with the
/// `kurrentdb` feature, KurrentDB with PostgreSQL's read tables.
#[macro_export]
macro_rules! on_every_store {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::helpers::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
            #[cfg(feature = "kurrentdb")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn kurrentdb() {
                super::$name(Backend::Kurrent).await
            }
        }
    )*};
}

/// The event log of a [`Backend::Kurrent`] test, with streams no other test uses: a test
/// server of its own in this process; or, when `ORGSYNC_TEST_KURRENTDB_SERVER` names the
/// test server's binary, in a process of its own (so that benchmarks measure the daemon's
/// memory without the server's); or, when `ORGSYNC_TEST_KURRENTDB_URL` names one, that real
/// server.
pub struct EventServer {
    pub url: String,
    pub prefix: String,
    // A test server this test started, in this process or another: stopped when dropped.
    _server: Option<Box<dyn Send + Sync>>,
}

impl EventServer {
    pub async fn start() -> Self {
        let prefix = format!("orgsync-t{}", uuid::Uuid::new_v4().simple());
        if let Ok(url) = std::env::var("ORGSYNC_TEST_KURRENTDB_URL") {
            return Self {
                url,
                prefix,
                _server: None,
            };
        }
        if let Ok(binary) = std::env::var("ORGSYNC_TEST_KURRENTDB_SERVER") {
            use tokio::io::AsyncBufReadExt;
            let mut process = tokio::process::Command::new(binary)
                .args(["--port", "0"])
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("the KurrentDB test server's binary runs");
            // It prints its URL once it listens.
            let stdout = process.stdout.take().expect("piped");
            let mut url = String::new();
            tokio::io::BufReader::new(stdout)
                .read_line(&mut url)
                .await
                .expect("the test server tells its URL");
            return Self {
                url: url.trim().to_owned(),
                prefix,
                _server: Some(Box::new(process)),
            };
        }
        let server = kurrentdb_test_server::TestServer::start(0, None)
            .await
            .expect("KurrentDB test server starts");
        Self {
            url: server.url(),
            prefix,
            _server: Some(Box::new(server)),
        }
    }
}

/// Where a test's store lives, and what keeps its event server up as long as it is needed.
pub struct TestStore {
    pub settings: StoreSettings,
    pub events: Option<Arc<EventServer>>,
}

impl TestStore {
    /// The store, with its event log where the settings say.
    pub async fn connect(&self) -> Store {
        connect(&self.settings).await
    }
}

/// `orgsync <command>` as operators run it, configured through the environment for the store
/// and state directory of `settings`.
pub fn orgsync_command(settings: &Settings, command: &str) -> std::process::Command {
    let mut orgsync = std::process::Command::new(env!("CARGO_BIN_EXE_orgsync"));
    orgsync
        .arg(command)
        .env("ORGSYNC__STORE__URL", &settings.store.url)
        .env("ORGSYNC__STORE__EVENTS_URL", &settings.store.events_url)
        .env(
            "ORGSYNC__STORE__EVENTS_PREFIX",
            &settings.store.events_prefix,
        )
        .env("ORGSYNC__STATE__DIR", &settings.state.dir);
    orgsync
}

/// Connects to the store `settings` name, its event log included.
pub async fn connect(settings: &StoreSettings) -> Store {
    Store::connect(&settings.url, 4, settings.statement_timeout)
        .await
        .expect("connect to the store")
        .with_event_log(&settings.events_url, &settings.events_prefix)
        .expect("connect to the event log")
}

static INIT: Once = Once::new();

fn init() {
    INIT.call_once(|| {
        // The daemon's own credentials come from the SDK's default chain, as in production.
        for (key, value) in [
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ] {
            if std::env::var_os(key).is_none() {
                std::env::set_var(key, value);
            }
        }
        if std::env::var_os("TEST_LOG").is_some() {
            orgsync::telemetry::init(&orgsync::config::LogSettings {
                level: "info,orgsync=debug".into(),
                format: "text".into(),
            });
        }
    });
}

/// A store no other test uses: a file in `dir`, or a new PostgreSQL database, and for
/// [`Backend::Kurrent`] an event server of its own beside the database.
pub async fn fresh_store(backend: Backend, dir: &TempDir) -> TestStore {
    let mut settings = Settings::load(None).expect("default settings").store;
    let postgres = || async {
        let admin = std::env::var("ORGSYNC_TEST_DATABASE_URL")
            .expect("ORGSYNC_TEST_DATABASE_URL is not set: run the suite with scripts/test");
        new_database(&admin).await
    };
    let mut events = None;
    settings.url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("orgsync.db").display()),
        Backend::Postgres => postgres().await,
        Backend::Kurrent => {
            let server = EventServer::start().await;
            settings.events_url = server.url.clone();
            settings.events_prefix = server.prefix.clone();
            events = Some(Arc::new(server));
            postgres().await
        }
    };
    TestStore { settings, events }
}

/// The settings of a daemon in this process: defaults, any free port, its state in `dir` and a
/// fresh store of the kind of `backend`, with what keeps that store's event server up.
pub async fn daemon_settings(
    backend: Backend,
    dir: &TempDir,
) -> (Settings, Option<Arc<EventServer>>) {
    let mut settings = Settings::load(None).expect("default settings");
    settings.server.listen = "127.0.0.1:0".into();
    settings.state.dir = dir.path().to_path_buf();
    let store = fresh_store(backend, dir).await;
    settings.store = store.settings;
    (settings, store.events)
}

/// The admin token a daemon's first start wrote into its state directory `dir`.
pub fn first_admin_token(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("admin.token"))
        .expect("first start writes admin.token")
        .trim()
        .to_owned()
}

/// Creates a database no other test uses on the server of `admin` (a database URL) and
/// answers its URL.
pub async fn new_database(admin: &str) -> String {
    let name = format!("orgsync_t_{}", uuid::Uuid::new_v4().simple());
    let pool = sqlx::PgPool::connect(admin)
        .await
        .expect("connect to PostgreSQL");
    sqlx::query(&format!("CREATE DATABASE \"{name}\""))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = &base[..base.rfind('/').expect("database URL has a path")];
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// A running daemon and an HTTP client with its first admin token.
pub struct TestApp {
    pub address: String,
    pub admin_token: String,
    pub settings: Settings,
    pub store: Store,
    pub app: App,
    pub client: reqwest::Client,
    pub backend: Backend,
    /// The stub in front of moto; its rules change what AWS answers.
    pub stub: Arc<AwsStub>,
    /// The event server of a [`Backend::Kurrent`] store.
    pub events: Option<Arc<EventServer>>,
    stop: CancellationToken,
    serving: JoinHandle<std::io::Result<()>>,
    // Kept so the state directory lives as long as the test.
    _dir: Arc<TempDir>,
}

impl TestApp {
    /// A daemon on a fresh store whose AWS endpoint is moto, behind the stub that adds what
    /// moto lacks.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_tuned(backend, |_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings changed by `tune` first.
    pub async fn spawn_tuned(backend: Backend, tune: impl FnOnce(&mut Settings)) -> Self {
        let stub = Arc::new(AwsStub::start(&crate::moto::moto_url()));
        let endpoint = stub.url.clone();
        Self::spawn_with(backend, stub, &endpoint, tune).await
    }

    /// A daemon on a fresh store with a moto organization of `shape` registered and
    /// harvested once; answers the daemon, the organization and its id.
    pub async fn harvested(
        backend: Backend,
        shape: crate::moto::Shape,
    ) -> (Self, crate::moto::MotoOrg, String) {
        let app = Self::spawn(backend).await;
        let org = crate::moto::MotoOrg::create(shape).await;
        let org_id = app.register(&org).await;
        app.harvest(&org_id).await;
        (app, org, org_id)
    }

    /// A second daemon beside this one: the same store, AWS stub and sealing key, its own
    /// state directory, the same admin token.
    pub async fn spawn_beside(&self) -> Self {
        let dir = TempDir::new().expect("temp dir");
        for file in ["orgsync.key", "admin.token"] {
            std::fs::copy(self.state_dir().join(file), dir.path().join(file)).expect("copy state");
        }
        let mut settings = self.settings.clone();
        settings.state.dir = dir.path().to_path_buf();
        let (stub, events) = (self.stub.clone(), self.events.clone());
        Self::start(self.backend, settings, Arc::new(dir), stub, events).await
    }

    /// A daemon whose AWS calls pass a connection-cutting proxy before the stub and moto.
    pub async fn spawn_behind_proxy(backend: Backend) -> (Self, FaultProxy) {
        let stub = Arc::new(AwsStub::start(&crate::moto::moto_url()));
        let proxy = FaultProxy::start(&stub.url).await;
        let app = Self::spawn_with(backend, stub, &proxy.url, |_| {}).await;
        (app, proxy)
    }

    async fn spawn_with(
        backend: Backend,
        stub: Arc<AwsStub>,
        endpoint: &str,
        tune: impl FnOnce(&mut Settings),
    ) -> Self {
        init();
        let dir = TempDir::new().expect("temp dir");
        let (mut settings, events) = daemon_settings(backend, &dir).await;
        settings.aws.endpoint_url = endpoint.to_owned();
        tune(&mut settings);
        Self::start(backend, settings, Arc::new(dir), stub, events).await
    }

    async fn start(
        backend: Backend,
        settings: Settings,
        dir: Arc<TempDir>,
        stub: Arc<AwsStub>,
        events: Option<Arc<EventServer>>,
    ) -> Self {
        let application = Application::build(settings.clone())
            .await
            .expect("daemon builds");
        let address = format!("http://127.0.0.1:{}", application.port());
        let app = application.app().clone();
        let store = app.store().clone();
        let stop = application.stopper();
        let serving = tokio::spawn(application.run_until_stopped());
        Self {
            address,
            admin_token: first_admin_token(dir.path()),
            settings,
            store,
            app,
            client: reqwest::Client::new(),
            backend,
            stop,
            serving,
            stub,
            events,
            _dir: dir,
        }
    }

    /// Stops the daemon as SIGTERM would and starts a new one on the same store and state.
    pub async fn restart(self) -> Self {
        let (backend, settings, dir, stub, events) = (
            self.backend,
            self.settings.clone(),
            self._dir.clone(),
            self.stub.clone(),
            self.events.clone(),
        );
        self.stop().await;
        Self::start(backend, settings, dir, stub, events).await
    }

    /// Stops the daemon and waits until it has; the state directory and the event server
    /// live as long as the returned guard.
    pub async fn stop(self) -> (Arc<TempDir>, Option<Arc<EventServer>>) {
        self.stop.cancel();
        self.serving
            .await
            .expect("daemon task")
            .expect("daemon stops cleanly");
        (self._dir, self.events)
    }

    /// The state directory.
    pub fn state_dir(&self) -> PathBuf {
        self._dir.path().to_path_buf()
    }

    /// A new token of `role`.
    pub async fn token(&self, role: Role) -> String {
        let name = format!("{role:?}-{}", uuid::Uuid::new_v4().simple());
        let (_, token) = tokens::create(self.store.pool(), role, &name, None)
            .await
            .expect("token");
        token.expose().clone()
    }

    /// GET with the admin token.
    pub async fn get(&self, path: &str) -> Response {
        self.get_as(path, &self.admin_token).await
    }

    /// GET with `token`.
    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// POST a JSON body with the admin token.
    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.post_as(path, body, &self.admin_token).await
    }

    /// POST a JSON body with `token`.
    pub async fn post_as(&self, path: &str, body: &Value, token: &str) -> Response {
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// PATCH a JSON body with the admin token.
    pub async fn patch(&self, path: &str, body: &Value) -> Response {
        self.client
            .patch(format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// DELETE with the admin token.
    pub async fn delete(&self, path: &str) -> Response {
        self.client
            .delete(format!("{}{path}", self.address))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .expect("request")
    }

    /// An account's badges: key to (value, autogenerated).
    pub async fn badges(&self, account: &str) -> BTreeMap<String, (String, bool)> {
        let view = self.get_json(&format!("/api/v1/accounts/{account}")).await;
        view["badges"]
            .as_array()
            .expect("badges")
            .iter()
            .map(|b| {
                (
                    b["key"].as_str().unwrap().to_owned(),
                    (
                        b["value"].as_str().unwrap().to_owned(),
                        b["autogenerated"].as_bool().unwrap(),
                    ),
                )
            })
            .collect()
    }

    /// GET, expecting 200, as JSON.
    /// The types of an account's events, oldest first (its first page of history).
    pub async fn history_types(&self, account: &str) -> Vec<String> {
        let history = self
            .get_json(&format!("/api/v1/accounts/{account}/events"))
            .await;
        history["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_owned())
            .collect()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        expect_json(response, StatusCode::OK).await
    }

    /// Registers `org` and returns its id.
    pub async fn register(&self, org: &crate::moto::MotoOrg) -> String {
        let response = self
            .post("/api/v1/organizations", &org.registration("prod"))
            .await;
        let body = expect_json(response, StatusCode::CREATED).await;
        body["id"].as_str().expect("id").to_owned()
    }

    /// Runs a harvest of `org_id` to its end (after any harvest already running) and returns
    /// the organization as it left it.
    pub async fn harvest(&self, org_id: &str) -> Value {
        let response = self
            .post(
                &format!("/api/v1/organizations/{org_id}/harvest?wait=true"),
                &Value::Null,
            )
            .await;
        expect_json(response, StatusCode::OK).await
    }

    /// The whole listing of `org_id`, by account id, in the fields moto can tell.
    pub async fn listing(&self, org_id: &str) -> BTreeMap<String, Value> {
        listing(&self.client, &self.address, &self.admin_token, org_id).await
    }

    /// How many events the log holds.
    pub async fn event_count(&self) -> i64 {
        self.store.event_count().await.expect("count events")
    }
}

/// Asserts the status and returns the body as JSON.
pub async fn expect_json(response: Response, status: StatusCode) -> Value {
    let actual = response.status();
    let body = response.text().await.expect("body");
    assert_eq!(actual, status, "unexpected status; body: {body}");
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {body}"))
}

/// The ids of a page of `GET /api/v1/accounts`, in order.
pub fn account_ids(page: &Value) -> Vec<String> {
    page["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account_id"].as_str().unwrap().to_owned())
        .collect()
}

/// Asserts a 4xx answer in the error envelope with `code`.
pub async fn expect_error(response: Response, status: StatusCode, code: &str) -> Value {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"]["code"], code, "unexpected error: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "no message: {body}"
    );
    body
}

/// The whole listing of `org_id` as the daemon at `base` answers it, page by page, by account
/// id, in the fields moto can tell.
pub async fn listing(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    org_id: &str,
) -> BTreeMap<String, Value> {
    let mut listing = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("{base}/api/v1/accounts?organization={org_id}&limit=50");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let response = client
            .get(path)
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let page = expect_json(response, StatusCode::OK).await;
        for account in page["accounts"].as_array().expect("accounts") {
            let keep = [
                "account_id",
                "name",
                "email",
                "state",
                "organization_id",
                "org_path",
                "tags",
            ];
            let view: serde_json::Map<String, Value> = keep
                .iter()
                .map(|k| ((*k).to_owned(), account[*k].clone()))
                .collect();
            listing.insert(
                account["account_id"].as_str().expect("id").to_owned(),
                Value::Object(view),
            );
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return listing,
        }
    }
}

/// The `orgsync serve` binary in a process of its own, as systemd runs it.
pub struct Daemon {
    pub process: tokio::process::Child,
    pub base: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Daemon {
    /// Starts it on the store `store` names and waits until it answers `/readyz` with 200.
    pub async fn start(state_dir: &std::path::Path, store: &StoreSettings, endpoint: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let process = tokio::process::Command::new(env!("CARGO_BIN_EXE_orgsync"))
            .arg("serve")
            .env("ORGSYNC__SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("ORGSYNC__STATE__DIR", state_dir)
            .env("ORGSYNC__STORE__URL", &store.url)
            .env("ORGSYNC__STORE__EVENTS_URL", &store.events_url)
            .env("ORGSYNC__STORE__EVENTS_PREFIX", &store.events_prefix)
            .env("ORGSYNC__AWS__ENDPOINT_URL", endpoint)
            .env("ORGSYNC__LOG__LEVEL", "warn")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready = || async {
            let readyz = client.get(format!("{base}/readyz")).send().await;
            readyz.is_ok_and(|r| r.status() == StatusCode::OK)
        };
        while !ready().await {
            assert!(Instant::now() < deadline, "the daemon did not come up");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let token = std::fs::read_to_string(state_dir.join("admin.token"))
            .unwrap()
            .trim()
            .to_owned();
        Self {
            process,
            base,
            token,
            client,
        }
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// Sends it `signal`, as `kill` names it.
    pub fn signal(&self, signal: &str) {
        let pid = self.process.id().unwrap().to_string();
        assert!(std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .unwrap()
            .success());
    }
}

/// A field of `/proc/<pid>/status` in MiB, such as `VmRSS` or `VmHWM` (peak RSS); `pid` may
/// be `self`.
pub fn memory_mib(pid: &str, field: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .unwrap()
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib / 1024.0
}

/// Starts the peak RSS of process `pid` (or `self`) afresh from its current RSS.
pub fn reset_peak_rss(pid: &str) {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
}
