//! The web desk: pages for customers, staff and admins, the JSON API, and
//! the operational endpoints.
//!
//! Pages live behind server-side sessions (tower-sessions in the desk's own
//! database, axum-login on top), a CSRF check on every state-changing form,
//! and a middleware that renders errors as pages. The API under `/api/v1`
//! takes bearer tokens only. Every response carries the security headers.

pub mod api;
pub mod auth;
pub mod commands;
pub mod csrf;
pub mod error;
pub mod input;
pub mod limits;
pub mod pages;
pub mod queue;
pub mod recent_sessions;
pub mod server;
pub mod timeline;
pub mod views;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRef, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::routing::{get, post};
use axum_login::AuthManagerLayerBuilder;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions::{CachingSessionStore, Expiry, SessionManagerLayer, SessionStore};

use crate::app::App;
use crate::store::PoolHandle;
use error::{AppError, ErrorCode};
use limits::Limits;

/// What handlers share: the application and the rate limiters.
#[derive(Clone)]
pub struct WebState {
    pub app: App,
    pub limits: Arc<Limits>,
}

impl FromRef<WebState> for App {
    fn from_ref(state: &WebState) -> App {
        state.app.clone()
    }
}

impl FromRef<WebState> for Arc<Limits> {
    fn from_ref(state: &WebState) -> Arc<Limits> {
        state.limits.clone()
    }
}

/// An id from a path: anything that is not one names nothing there is.
pub fn parse_id<T: std::str::FromStr>(text: &str) -> error::AppResult<T> {
    text.parse().map_err(|_| AppError::not_found())
}

/// A query string whose refusal is an `AppError` (a page or a JSON error).
pub struct ValidQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ValidQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        input::check_pairs(parts.uri.query().unwrap_or_default().as_bytes())?;
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(q)| ValidQuery(q))
            .map_err(AppError::from)
    }
}

/// Path parameters; a path that does not decode into them (not UTF-8, not
/// the type a route takes) names nothing, so it is not found, as a page or
/// as a JSON error.
pub struct ValidPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ValidPath<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(value)) => Ok(ValidPath(value)),
            Err(rejection) if rejection.status().is_server_error() => {
                tracing::error!(%rejection, "a route's path parameters do not fit its handler");
                Err(AppError::internal())
            }
            Err(_) => Err(AppError::not_found()),
        }
    }
}

/// A form body whose refusal is an `AppError`.
pub struct ValidForm<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidForm<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let req = input::checked_body(req, state, input::check_pairs).await?;
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(f)| ValidForm(f))
            .map_err(AppError::from)
    }
}

/// The largest request body anything accepts.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// The largest JSON or form body a handler reads.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// A session ends this long after it last changed (signing in, a form).
const SESSION_IDLE_HOURS: i64 = 12;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; object-src 'none'";

/// Where the stylesheet and scripts are: `STATIC_DIR`, else `./static`, else
/// the source tree's.
pub fn static_dir(settings: &crate::config::Settings) -> PathBuf {
    if let Some(dir) = &settings.static_dir {
        return dir.clone();
    }
    let here = PathBuf::from("static");
    if here.join("app.css").is_file() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/static"))
}

fn page_routes() -> Router<WebState> {
    use pages::{
        account, admin, common, customer, drills, endpoints, hosts, register, staff, transactions,
        verdict,
    };
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(account::login_page).post(account::login))
        .route("/logout", post(account::logout))
        .route(
            "/account/password",
            get(account::password_page).post(account::change_password),
        )
        // Customers.
        .route("/clusters", get(customer::clusters))
        .route("/clusters/{id}", get(customer::cluster))
        .route("/clusters/{id}/transactions", get(transactions::around))
        .route("/support", get(customer::support))
        .route("/support/new", get(customer::support_new))
        .route("/requests/new", get(customer::new_request))
        .route("/requests", post(customer::file_request))
        .route("/requests/preview", get(customer::preview))
        .route("/tickets", get(customer::tickets))
        .route("/tickets/{id}", get(customer::ticket))
        .route("/tickets/{id}/progress", get(common::progress))
        .route("/tickets/{id}/reply", post(customer::reply))
        .route("/tickets/{id}/cancel", post(customer::cancel))
        .route("/tickets/{id}/target", post(customer::change_target))
        .route("/tickets/{id}/accept", post(customer::accept))
        .route("/tickets/{id}/move-forward", post(customer::move_forward))
        .route("/tickets/{id}/go-back", post(customer::go_back))
        .route("/tickets/{id}/verdict", post(customer::verdict))
        .route(
            "/verdict/{id}/{token}",
            get(verdict::show).post(verdict::submit),
        )
        // Staff and admins.
        .route(
            "/staff",
            get(|| async { axum::response::Redirect::to("/staff/tickets") }),
        )
        .route("/staff/tickets", get(staff::queue))
        .route("/staff/tickets/{id}", get(staff::ticket))
        .route("/staff/tickets/{id}/target", post(staff::change_target))
        .route("/staff/tickets/{id}/{action}", post(staff::act))
        .route("/staff/drills", get(drills::page))
        .route("/staff/drills/{id}/start", post(drills::start))
        // Admins.
        .route("/admin", get(admin::index))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{id}", post(admin::update_user))
        .route(
            "/admin/clusters",
            get(admin::clusters).post(register::register),
        )
        .route("/admin/clusters/{id}/delete", post(admin::delete_cluster))
        .route(
            "/admin/clusters/{id}/drill-settings",
            post(drills::save_settings),
        )
        .route("/admin/zones", get(admin::zones))
        .route(
            "/admin/zones/{region}/{zone}/{state}",
            post(admin::set_zone),
        )
        .route("/admin/hosts", get(hosts::page).post(hosts::save))
        .route("/admin/hosts/{name}/remove", post(hosts::remove))
        .route("/admin/faults", post(admin::add_fault))
        .route("/admin/faults/clear", post(admin::clear_faults))
        .route("/admin/outbox", get(admin::outbox))
        .route("/admin/audit", get(admin::audit))
        .route("/admin/ratings", get(admin::ratings))
        .route(
            "/admin/endpoints",
            get(endpoints::admin_list).post(endpoints::admin_create),
        )
        .route("/admin/endpoints/{id}", get(endpoints::admin_show))
        .route("/admin/endpoints/{id}/{action}", post(endpoints::admin_act))
        .route(
            "/account/endpoints",
            get(endpoints::customer_list).post(endpoints::customer_create),
        )
        .route("/account/endpoints/{id}", get(endpoints::customer_show))
        .route(
            "/account/endpoints/{id}/{action}",
            post(endpoints::customer_act),
        )
        .fallback(pages::not_found)
}

/// The pages with their sessions, CSRF check and error pages.
fn with_sessions<S>(pages: Router<WebState>, state: &WebState, sessions: S) -> Router<WebState>
where
    S: SessionStore + Clone,
{
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name("rd_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.app.settings.secure_cookies())
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::hours(SESSION_IDLE_HOURS),
        ));
    let auth =
        AuthManagerLayerBuilder::new(auth::Accounts::new(state.app.clone()), session_layer).build();
    pages
        .layer(from_fn_with_state(state.clone(), csrf::guard))
        .layer(from_fn(pages::error_pages))
        .layer(auth)
        // Pages show private data: never keep them in shared caches.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

/// The session table with the sessions read lately in front of it.
fn recent_first<S: SessionStore + Clone>(
    state: &WebState,
    sessions: S,
) -> CachingSessionStore<recent_sessions::RecentSessions, S> {
    let recent = recent_sessions::RecentSessions::new(state.app.settings.read_cache());
    CachingSessionStore::new(recent, sessions)
}

/// Keeps the session table and the rate limiters tidy until `shutdown`.
fn spawn_housekeeping<S>(sessions: S, limits: Arc<Limits>, shutdown: CancellationToken)
where
    S: ExpiredDeletion + Clone,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    limits.tidy();
                    if let Err(error) = sessions.delete_expired().await {
                        tracing::warn!(%error, "removing expired sessions failed");
                    }
                }
            }
        }
    });
}

/// Builds the whole web desk. Creates the session table if needed and keeps
/// it tidy until `shutdown`.
pub async fn router(app: App, shutdown: CancellationToken) -> anyhow::Result<Router> {
    // Record from the first request on, not from the first scrape.
    crate::metrics::handle();
    let state = WebState {
        limits: Arc::new(Limits::new(&app.settings)),
        app,
    };
    let pages = match state.app.store.pool_handle() {
        PoolHandle::Sqlite(pool) => {
            let sessions = tower_sessions_sqlx_store::SqliteStore::new(pool);
            sessions.migrate().await?;
            spawn_housekeeping(sessions.clone(), state.limits.clone(), shutdown);
            with_sessions(page_routes(), &state, recent_first(&state, sessions))
        }
        PoolHandle::Postgres(pool) => {
            let sessions = tower_sessions_sqlx_store::PostgresStore::new(pool);
            sessions.migrate().await?;
            spawn_housekeeping(sessions.clone(), state.limits.clone(), shutdown);
            with_sessions(page_routes(), &state, recent_first(&state, sessions))
        }
    };
    let static_files = Router::new()
        .nest_service("/static", ServeDir::new(static_dir(&state.app.settings)))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ));
    let api = api::router().layer(SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    ));
    let hsts = state.app.settings.secure_cookies().then(|| {
        SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        )
    });
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(api)
        .merge(static_files)
        .merge(pages)
        .route_layer(from_fn(track))
        .layer(from_fn_with_state(state.clone(), outages))
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_PAYLOAD_BYTES))
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .layer(from_fn(api::error_bodies))
        .layer(CompressionLayer::new())
        .layer(security_header(header::CONTENT_SECURITY_POLICY, CSP))
        .layer(security_header(header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .layer(security_header(header::REFERRER_POLICY, "same-origin"))
        .layer(security_header(header::X_FRAME_OPTIONS, "DENY"))
        .layer(security_header(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ))
        .layer(TraceLayer::new_for_http());
    // Browsers that reached the desk over HTTPS keep to it.
    let router = match hsts {
        Some(hsts) => router.layer(hsts),
        None => router,
    };
    Ok(router)
}

fn security_header(
    name: header::HeaderName,
    value: &'static str,
) -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(name, HeaderValue::from_static(value))
}

/// A 500 the handlers did not explain (the session layers answer a bare 500
/// when their store fails) is checked against the database: when it is
/// down or full, the answer is the 503 that says so, as a page or as JSON.
async fn outages(
    State(app): State<App>,
    request: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let api = api::is_api_path(request.uri().path());
    let response = next.run(request).await;
    if response.status() != StatusCode::INTERNAL_SERVER_ERROR {
        return response;
    }
    match app.store.probe_write(&app.instance, app.now()).await {
        Err(cause) if cause.is_outage() => {
            let error = AppError::from(cause);
            if api {
                error.into_response()
            } else {
                pages::sessionless_error_page(&error)
            }
        }
        _ => response,
    }
}

/// Counts requests and their durations by route, method and status.
async fn track(request: Request, next: axum::middleware::Next) -> axum::response::Response {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = request.method().as_str().to_string();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    ::metrics::histogram!(
        "restore_desk_http_request_seconds",
        "route" => route.clone(),
        "method" => method.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    ::metrics::counter!(
        "restore_desk_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status,
    )
    .increment(1);
    response
}

/// Whether a scrape of `/metrics` may be answered: from loopback always;
/// from elsewhere only with the configured bearer token.
pub fn may_scrape(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    token: Option<&str>,
) -> bool {
    use subtle::ConstantTimeEq;
    if peer.is_loopback() {
        return true;
    }
    match (token, auth::bearer(headers)) {
        (Some(expected), Some(given)) => bool::from(expected.as_bytes().ct_eq(given.as_bytes())),
        _ => false,
    }
}

/// Prometheus metrics of this process, with the shared state's gauges.
async fn metrics(
    State(app): State<App>,
    auth::ClientAddr(peer): auth::ClientAddr,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if !may_scrape(peer, &headers, app.settings.metrics_token.as_deref()) {
        let refused = AppError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthenticated,
            "Metrics answer only on loopback, or with the bearer token set as METRICS_TOKEN",
        );
        return refused.into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        crate::metrics::render(&app).await,
    )
        .into_response()
}

/// The process is up.
async fn healthz() -> &'static str {
    "ok"
}

/// The process can serve: its database answers and takes writes (a full
/// disk answers reads but refuses writes).
async fn readyz(State(app): State<App>) -> (StatusCode, &'static str) {
    match app.store.probe_write(&app.instance, app.now()).await {
        Ok(()) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            match error {
                crate::store::StoreError::StorageFull(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "storage full")
                }
                _ => (StatusCode::SERVICE_UNAVAILABLE, "database unavailable"),
            }
        }
    }
}

/// Serves until `shutdown` fires, then finishes in-flight requests.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = server::ConnectionLimits::from_settings(&app.settings);
    let router = router(app, shutdown.clone())
        .await
        .map_err(std::io::Error::other)?;
    server::run(listener, router, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::may_scrape;
    use axum::http::HeaderMap;

    #[test]
    fn metrics_answer_loopback_or_the_token() {
        let loopback = "127.0.0.1".parse().unwrap();
        let remote = "10.1.2.3".parse().unwrap();
        let none = HeaderMap::new();
        let mut right = HeaderMap::new();
        right.insert("authorization", "Bearer s3cret".parse().unwrap());
        let mut wrong = HeaderMap::new();
        wrong.insert("authorization", "Bearer guess".parse().unwrap());
        assert!(may_scrape(loopback, &none, None));
        assert!(!may_scrape(remote, &none, None));
        assert!(
            !may_scrape(remote, &right, None),
            "no token set: loopback only"
        );
        assert!(may_scrape(remote, &right, Some("s3cret")));
        assert!(!may_scrape(remote, &wrong, Some("s3cret")));
        assert!(!may_scrape(remote, &none, Some("s3cret")));
    }
}
