//! The web desk on a real socket: `spawn_app` serves a freshly seeded demo
//! on 127.0.0.1:0 against SQLite or PostgreSQL; `Browser` is a cookie-keeping
//! client for the pages (it reads the CSRF token from the forms it loads);
//! `Api` speaks the JSON API with bearer tokens.

use std::time::Duration;

use reqwest::{Response, StatusCode, redirect};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{TestDb, settings, t0};
use restore_desk::app::App;
use restore_desk::clock::ManualClock;
use restore_desk::config::Settings;
use restore_desk::store::Scope;

pub struct TestApp {
    pub base: String,
    pub app: App,
    pub clock: ManualClock,
    pub postgres: bool,
    shutdown: CancellationToken,
    engine: Option<tokio::task::JoinSet<()>>,
    // Dropped last: the server stops before its database goes.
    _db: TestDb,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Serves the seeded demo. Rate limits are off unless `args` set them.
pub async fn spawn_app(postgres: bool, args: &[&str]) -> TestApp {
    spawn_app_with(postgres, args, |_| {}).await
}

/// As `spawn_app`, with settings the flags of `common::settings` fix
/// (such as the sandbox's step duration) changed by `tweak`.
pub async fn spawn_app_with(
    postgres: bool,
    args: &[&str],
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    spawn_app_on(TestDb::of_kind(postgres).await, args, tweak).await
}

/// As `spawn_app_with`, on a database the caller made.
pub async fn spawn_app_on(db: TestDb, args: &[&str], tweak: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_at(db, "127.0.0.1", args, tweak).await
}

/// As `spawn_app_on`, listening on a port of `address`.
pub async fn spawn_app_at(
    db: TestDb,
    address: &str,
    args: &[&str],
    tweak: impl FnOnce(&mut Settings),
) -> TestApp {
    let postgres = db.url.starts_with("postgres");
    let listener = TcpListener::bind((address, 0)).await.expect("bind");
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut all: Vec<&str> = vec!["--public-url", &base];
    if !args.contains(&"--login-rate-limit") {
        all.extend(["--login-rate-limit", "0"]);
    }
    if !args.contains(&"--filing-rate-limit") {
        all.extend(["--filing-rate-limit", "0"]);
    }
    all.extend(args);
    let clock = ManualClock::new(t0());
    let mut settings = settings(&db, &all);
    tweak(&mut settings);
    let app = restore_desk::cli::build(settings, std::sync::Arc::new(clock.clone()))
        .await
        .expect("build app");
    assert!(restore_desk::demo::seed(&app, "demo").await.expect("seed"));
    let shutdown = CancellationToken::new();
    let serving = app.clone();
    let stop = shutdown.clone();
    tokio::spawn(async move {
        restore_desk::web::serve(serving, listener, stop)
            .await
            .expect("serve");
    });
    TestApp {
        base,
        app,
        clock,
        postgres,
        shutdown,
        engine: None,
        _db: db,
    }
}

impl TestApp {
    /// Files a request for `cluster` (to 24 Nov 10:00 UTC, severity B) as
    /// the customer `api` speaks for; the new ticket's id.
    pub async fn file_request(&self, api: &Api, cluster: &str, name: &str) -> String {
        let cluster = self.cluster_id(cluster).await;
        let (status, ticket) = api
            .post(
                "/api/v1/tickets",
                serde_json::json!({"cluster_id": cluster, "target_time": "2026-11-24T10:00:00Z",
                       "new_cluster_name": name, "severity": "B", "description": "test"}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{ticket}");
        ticket["id"].as_str().unwrap().to_string()
    }

    /// Sam's commands on a ticket through the API, each expected to pass.
    pub async fn staff_acts(&self, id: &str, commands: &[(&str, Value)]) {
        let sam = Api::signed_in(&self.base, "sam@support.example").await;
        for (command, body) in commands {
            let (status, answer) = sam
                .post(&format!("/api/v1/tickets/{id}/{command}"), body.clone())
                .await;
            assert_eq!(status, StatusCode::OK, "{command}: {answer}");
        }
    }

    /// Starts the restore workers, duties and email relay, as `serve` does.
    pub fn start_engine(&mut self) {
        self.engine = Some(restore_desk::engine::spawn(
            self.app.clone(),
            self.shutdown.clone(),
        ));
    }

    pub async fn cluster_id(&self, name: &str) -> Uuid {
        self.app
            .store
            .clusters(Scope::Everything, true)
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no cluster {name}"))
            .id
            .uuid()
    }

    /// Another desk on the same database and clock, as a second process
    /// would be: its own caches, its own socket. Stops with this one.
    pub async fn another_server(&self) -> (String, App) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = restore_desk::cli::build(
            (*self.app.settings).clone(),
            std::sync::Arc::new(self.clock.clone()),
        )
        .await
        .expect("build the second desk");
        let serving = app.clone();
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            restore_desk::web::serve(serving, listener, stop)
                .await
                .expect("serve");
        });
        (base, app)
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.base)
    }

    pub fn api(&self) -> Api {
        Api::new(&self.base)
    }
}

pub const PASSWORD: &str = "demo";

/// The `value` of the hidden `csrf` field of the first form on a page.
pub fn csrf_in(html: &str) -> Option<String> {
    let at = html.find("name=\"csrf\" value=\"")?;
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The `value` of a hidden `version` field.
pub fn version_in(html: &str) -> Option<i64> {
    let at = html.find("name=\"version\" value=\"")?;
    let rest = &html[at + "name=\"version\" value=\"".len()..];
    rest[..rest.find('"')?].parse().ok()
}

/// A person at a browser: keeps cookies, follows no redirects by itself.
pub struct Browser {
    pub base: String,
    pub client: reqwest::Client,
    /// The CSRF token of the last page loaded.
    pub csrf: String,
}

impl Browser {
    pub fn new(base: &str) -> Browser {
        Browser::from_address(base, None)
    }

    /// A browser on another machine: its requests come from `address`
    /// (any of 127.0.0.0/8 reaches a desk on 127.0.0.1).
    pub fn from_address(base: &str, address: Option<std::net::IpAddr>) -> Browser {
        Browser {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .local_address(address)
                .build()
                .unwrap(),
            csrf: String::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&mut self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    /// A GET that asks for `accept`, as a page's script does.
    pub async fn get_with_accept(&mut self, path: &str, accept: &str) -> Response {
        self.client
            .get(self.url(path))
            .header("accept", accept)
            .send()
            .await
            .unwrap()
    }

    /// Loads a page, expecting 200, and remembers its CSRF token.
    pub async fn page(&mut self, path: &str) -> String {
        let response = self.get(path).await;
        let status = response.status();
        let html = response.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {html}");
        if let Some(token) = csrf_in(&html) {
            self.csrf = token;
        }
        html
    }

    /// Posts a form with the current CSRF token.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut all: Vec<(&str, &str)> = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.client
            .post(self.url(path))
            .form(&all)
            .send()
            .await
            .unwrap()
    }

    /// Posts a form exactly as given: no token added.
    pub async fn post_raw(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// Follows a 303 and returns the page it leads to.
    pub async fn follow(&mut self, response: Response) -> String {
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let Some(location) = location else {
            let body = response.text().await.unwrap();
            panic!("expected a redirect, got {status}: {body}");
        };
        assert_eq!(status, StatusCode::SEE_OTHER, "redirect to {location}");
        self.page(&location).await
    }

    pub async fn sign_in(&mut self, email: &str) {
        self.page("/login").await;
        let response = self
            .post("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {email}: {}",
            response.text().await.unwrap()
        );
        let home = response.headers()["location"].to_str().unwrap().to_string();
        self.page(&home).await;
    }

    pub async fn sign_out(&mut self) {
        let response = self.post("/logout", &[]).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
}

/// A client of the JSON API.
pub struct Api {
    pub base: String,
    pub client: reqwest::Client,
    pub token: Option<String>,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
            token: None,
        }
    }

    pub async fn sign_in(&mut self, email: &str) {
        let response = self
            .client
            .post(format!("{}/api/v1/login", self.base))
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        self.token = Some(body["token"].as_str().unwrap().to_string());
    }

    pub async fn signed_in(base: &str, email: &str) -> Api {
        let mut api = Api::new(base);
        api.sign_in(email).await;
        api
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        request
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        json_of(response).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .request(reqwest::Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        json_of(response).await
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self.request(method, path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        json_of(request.send().await.unwrap()).await
    }
}

pub async fn json_of(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, value)
}

/// Polls `check` until it returns `Some`, for at most `limit`.
pub async fn eventually<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
