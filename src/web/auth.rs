//! Who is asking. Pages sign in with a password into a server-side session
//! (axum-login over tower-sessions); the JSON API with bearer tokens only,
//! never with the cookie. Either way the user is reloaded from the store on
//! every request, so disabling someone ends their access at once.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::domain::ids::UserId;
use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum_login::{AuthUser, AuthnBackend};
use chrono::Duration;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use tower_sessions::Session;

use super::error::{AppError, ErrorCode};
use crate::app::App;
use crate::domain::actor::Role;
use crate::domain::email::Email;
use crate::password;
use crate::store::{DynStore, StoreError, User};

/// A signed-in person, as the session layer knows them. The session keeps
/// a hash of the account's stamp — its password hash and session epoch —
/// and ends when the stamp changes: a new password, or the account being
/// disabled (which bumps the epoch, so enabling it again does not revive
/// the sessions it had).
#[derive(Clone)]
pub struct SignedIn {
    pub user: User,
    stamp: Vec<u8>,
}

impl SignedIn {
    pub fn new(user: User) -> SignedIn {
        let stamp = format!("{}\n{}", user.password_hash, user.session_epoch).into_bytes();
        SignedIn { user, stamp }
    }
}

impl std::fmt::Debug for SignedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.user.fmt(f)
    }
}

impl AuthUser for SignedIn {
    type Id = UserId;

    fn id(&self) -> UserId {
        self.user.id
    }

    fn session_auth_hash(&self) -> &[u8] {
        &self.stamp
    }
}

pub struct Credentials {
    pub email: String,
    pub password: String,
}

/// Checks passwords and reloads users for the session layer.
#[derive(Clone)]
pub struct Accounts {
    app: App,
}

impl Accounts {
    pub fn new(app: App) -> Accounts {
        Accounts { app }
    }
}

/// A hash to verify against when the email is unknown, so that a miss
/// takes as long as a wrong password and does not reveal who has an account.
async fn decoy_hash() -> &'static str {
    static DECOY: OnceCell<String> = OnceCell::const_new();
    DECOY
        .get_or_init(|| async {
            password::hash("decoy password for unknown accounts")
                .await
                .unwrap_or_default()
        })
        .await
}

/// The enabled user with this email and password, if any.
pub async fn check_password(
    store: &DynStore,
    email: &str,
    secret: &str,
) -> Result<Option<User>, StoreError> {
    // Text that is not an address has no account: it fails like a wrong
    // password, after as long.
    let user = match Email::parse(email) {
        Ok(email) => store.user_by_email(&email).await?,
        Err(_) => None,
    };
    let hash = match &user {
        Some(user) => user.password_hash.as_str(),
        None => decoy_hash().await,
    };
    let matches = password::verify(secret, hash).await;
    Ok(user.filter(|u| matches && !u.disabled))
}

impl AuthnBackend for Accounts {
    type User = SignedIn;
    type Credentials = Credentials;
    type Error = StoreError;

    async fn authenticate(&self, creds: Credentials) -> Result<Option<SignedIn>, StoreError> {
        Ok(
            check_password(&self.app.store, &creds.email, &creds.password)
                .await?
                .map(SignedIn::new),
        )
    }

    async fn get_user(&self, id: &UserId) -> Result<Option<SignedIn>, StoreError> {
        Ok(crate::desk::read::user(&self.app, *id)
            .await?
            .filter(|u| !u.disabled)
            .map(SignedIn::new))
    }
}

pub type AuthSession = axum_login::AuthSession<Accounts>;

/// The client's address, from the connection.
pub fn client_addr(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

/// The address a request came from, as an extractor.
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(client_addr(parts)))
    }
}

// ---------------------------------------------------------------- pages

/// Anyone on a page, signed in or not.
pub struct Visitor {
    pub user: Option<User>,
    pub session: Session,
}

fn session_of(parts: &Parts) -> Result<Session, AppError> {
    parts.extensions.get::<Session>().cloned().ok_or_else(|| {
        tracing::error!("page route without the session layer");
        AppError::internal()
    })
}

fn user_of(parts: &Parts) -> Option<User> {
    parts
        .extensions
        .get::<AuthSession>()
        .and_then(|auth| auth.user.clone())
        .map(|signed_in| signed_in.user)
}

impl<S: Send + Sync> FromRequestParts<S> for Visitor {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Visitor {
            user: user_of(parts),
            session: session_of(parts)?,
        })
    }
}

/// A signed-in person on a page.
pub struct Viewer {
    pub user: User,
    pub session: Session,
}

/// Why a page refused: not signed in (go sign in), a password to change
/// first, or not allowed.
pub enum PageRefusal {
    SignIn(String),
    ChangePassword,
    Error(AppError),
}

/// The one page someone whose password was reset may open.
pub const PASSWORD_PAGE: &str = "/account/password";

impl IntoResponse for PageRefusal {
    fn into_response(self) -> Response {
        match self {
            PageRefusal::SignIn(next) => {
                let next =
                    url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>();
                Redirect::to(&format!("/login?next={next}")).into_response()
            }
            PageRefusal::ChangePassword => Redirect::to(PASSWORD_PAGE).into_response(),
            PageRefusal::Error(error) => error.into_response(),
        }
    }
}

fn viewer(parts: &Parts, allowed: impl Fn(Role) -> bool) -> Result<Viewer, PageRefusal> {
    let session = session_of(parts).map_err(PageRefusal::Error)?;
    let Some(user) = user_of(parts) else {
        // Come back to the page after signing in; a form post cannot be
        // replayed by a redirect, so it starts over from the home page.
        let next = match parts.method {
            axum::http::Method::GET => parts
                .uri
                .path_and_query()
                .map(|pq| pq.as_str().to_string())
                .unwrap_or_else(|| "/".into()),
            _ => "/".into(),
        };
        return Err(PageRefusal::SignIn(next));
    };
    if user.must_change_password && parts.uri.path() != PASSWORD_PAGE {
        return Err(PageRefusal::ChangePassword);
    }
    if !allowed(user.role) {
        return Err(PageRefusal::Error(AppError::forbidden()));
    }
    Ok(Viewer { user, session })
}

macro_rules! page_role {
    ($(#[$doc:meta])* $name:ident, $allowed:expr) => {
        $(#[$doc])*
        pub struct $name(pub Viewer);

        impl<S: Send + Sync> FromRequestParts<S> for $name {
            type Rejection = PageRefusal;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
                viewer(parts, $allowed).map($name)
            }
        }
    };
}

page_role!(
    /// Any signed-in person.
    AnyUser,
    |_| true
);
page_role!(
    /// A customer: the portal.
    CustomerUser,
    |role| role == Role::Customer
);
page_role!(
    /// Staff or an admin: ticket work.
    StaffUser,
    Role::works_tickets
);
page_role!(
    /// An admin: administration.
    AdminUser,
    |role| role == Role::Admin
);

// ---------------------------------------------------------------- API

/// How long an API token lives.
pub const TOKEN_DAYS: i64 = 30;

/// SHA-256 of a token, as stored: a leaked table grants nothing.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
        .filter(|t| !t.is_empty())
}

/// Issues a new token for `user`.
pub async fn issue_token(
    app: &App,
    user: &User,
) -> Result<(String, chrono::DateTime<chrono::Utc>), StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("rd_{}", hex::encode(bytes));
    let now = app.now();
    let expires = now + Duration::days(TOKEN_DAYS);
    app.store
        .create_api_token(&token_hash(&token), user.id, now, expires)
        .await?;
    Ok((token, expires))
}

/// A caller of the JSON API, by bearer token.
pub struct ApiUser(pub User);

impl<S> FromRequestParts<S> for ApiUser
where
    App: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = App::from_ref(state);
        let token = bearer(&parts.headers).ok_or_else(AppError::unauthenticated)?;
        let hash = token_hash(token);
        let now = app.now();
        if let Some(user) = app.api_tokens.get(&hash, now) {
            return Ok(ApiUser(user));
        }
        let user = app
            .store
            .user_for_api_token(&hash, now)
            .await?
            .ok_or_else(|| {
                AppError::new(
                    axum::http::StatusCode::UNAUTHORIZED,
                    ErrorCode::Unauthenticated,
                    "The token is unknown, expired or revoked: sign in again",
                )
            })?;
        app.api_tokens.put(&hash, &user, now);
        Ok(ApiUser(user))
    }
}

impl ApiUser {
    pub fn staff(&self) -> Result<&User, AppError> {
        if self.0.role.works_tickets() {
            Ok(&self.0)
        } else {
            Err(AppError::forbidden())
        }
    }

    pub fn admin(&self) -> Result<&User, AppError> {
        if self.0.role == Role::Admin {
            Ok(&self.0)
        } else {
            Err(AppError::forbidden())
        }
    }
}
