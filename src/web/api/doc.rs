//! The OpenAPI 3.1 document of the API, served at `/api/v1/openapi.json`.
//!
//! Each route's annotation lists what is particular to it (its success, its
//! 403, 404, 409, 422, 429, a 503 that can come from the fleet). What every
//! route shares is added by rule in `SharedResponses`, so no route can leave
//! it out: 401 wherever a bearer token is needed, 404 wherever a path names
//! something, 405 for a method the path does not take, 413 and 422 wherever
//! a body or a query string is read, and 500 and 503 everywhere, since every
//! route reads the database.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

use super::{routes, words};
use crate::web::error::{ErrorBody, ErrorCode, ErrorDetail, FieldError};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Restore Desk API",
        description = "Point-in-time restore requests for managed database clusters. \
            Sign in with POST /api/v1/login, then send `Authorization: Bearer <token>`. \
            Every error is `{\"error\":{\"code\",\"message\",\"field\"}}` with a `code` \
            from `ErrorCode`; another subscription's things answer 404, never 403.",
        version = "1"
    ),
    paths(
        routes::login,
        routes::logout,
        routes::me,
        routes::clusters,
        routes::cluster,
        routes::delete_cluster,
        routes::register_cluster,
        routes::cluster_transactions,
        routes::drills,
        routes::start_drill,
        routes::drill_settings,
        routes::set_drill_settings,
        routes::file_ticket,
        routes::check_ticket,
        routes::tickets,
        routes::ticket,
        routes::ticket_action,
        routes::change_target,
        routes::move_forward,
        routes::go_back,
        routes::ticket_events,
        routes::ticket_messages,
        routes::job,
        routes::zones,
        routes::set_zone,
        routes::hosts,
        routes::put_host,
        routes::remove_host,
        routes::users,
        routes::create_user,
        routes::update_user,
        routes::faults,
        routes::add_fault,
        routes::clear_faults,
        routes::outbox,
        routes::audit,
        routes::give_verdict,
        routes::ratings,
        routes::handovers,
        routes::ticket_verdict,
        routes::endpoints,
        routes::create_endpoint,
        routes::endpoint,
        routes::update_endpoint,
        routes::delete_endpoint,
        routes::rotate_endpoint,
        routes::test_endpoint,
        routes::endpoint_deliveries,
    ),
    components(
        // Words used only by parameters: schemas of bodies are collected
        // from the bodies themselves.
        schemas(
            ErrorBody,
            ErrorDetail,
            FieldError,
            ErrorCode,
            words::TicketStateFilter,
            words::ResponseFilter,
            words::TicketAction,
            words::Severity,
            words::Zone,
            words::ZoneChange,
            words::OutboxStatus,
            words::EventType,
            words::EndpointKind,
        ),
        responses(
            Unauthenticated,
            Forbidden,
            NotFound,
            MethodNotAllowed,
            PayloadTooLarge,
            InvalidInput,
            RateLimited,
            Internal,
            Unavailable,
            FleetUnavailable,
        )
    ),
    modifiers(&BearerAuth, &SharedResponses),
    tags(
        (name = "session", description = "Signing in and out"),
        (name = "clusters", description = "Clusters and their restorable windows"),
        (name = "tickets", description = "Restore requests and the work on them"),
        (name = "drills", description = "Restore tests: each cluster's backups restored on a \
            schedule from each zone in turn into a copy no customer sees, verified, then \
            removed. A zone whose latest test failed puts the cluster's restores at risk."),
        (name = "fleet", description = "Zones, the fleet's hosts and injected faults"),
        (name = "admin", description = "People, outbox and audit log"),
        (name = "endpoints", description = "Webhooks and team chats notices are posted to. \
            A webhook post carries `Restore-Desk-Signature: t=<unix seconds>,v1=<hex>`: \
            HMAC-SHA256, keyed with the endpoint's secret, of `<t>.<body>`; during a \
            rotation's overlap a second `v1` signs with the secret before. Verify in \
            constant time and refuse a `t` more than 300 seconds from your clock. \
            `Restore-Desk-Event-Id` is the same at every retry: ignore one seen before."),
    )
)]
pub struct ApiDoc;

/// `GET /api/v1/openapi.json`.
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// An error answer: the error body, described, with the headers it carries.
fn error_response(description: &str, headers: &[(&str, Type, &str)]) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    for (name, kind, about) in headers {
        response = response.header(
            *name,
            HeaderBuilder::new()
                .schema(Some(ObjectBuilder::new().schema_type(kind.clone())))
                .description(Some(*about))
                .build(),
        );
    }
    response.build()
}

/// Declares a reusable error answer, named like its type.
macro_rules! error_answer {
    ($name:ident, $description:expr $(, $header:expr)*) => {
        pub struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error_response($description, &[$($header),*]).into())
            }
        }
    };
}

const RETRY_AFTER: (&str, Type, &str) = ("Retry-After", Type::Integer, "Seconds to wait");

error_answer!(
    Unauthenticated,
    "No bearer token, or one that is unknown, expired or revoked (`unauthenticated`): \
     sign in with POST /api/v1/login",
    (
        "WWW-Authenticate",
        Type::String,
        "`Bearer realm=\"restore-desk\"`"
    )
);
error_answer!(Forbidden, "The caller's role may not do this (`forbidden`)");
error_answer!(
    NotFound,
    "Nothing by that id, or not the caller's to see: another subscription's things answer \
     the same (`not_found`)"
);
error_answer!(
    MethodNotAllowed,
    "The path does not take the method sent (`method_not_allowed`); `Allow` lists those it \
     does",
    ("Allow", Type::String, "The methods the path takes")
);
error_answer!(
    PayloadTooLarge,
    "The body is larger than the desk reads (`payload_too_large`)"
);
error_answer!(
    InvalidInput,
    "A query parameter or body the desk cannot read (`invalid_input`); `field` names it when \
     it can"
);
error_answer!(
    RateLimited,
    "Too many attempts in the last minute from this address or for this account \
     (`rate_limited`)",
    RETRY_AFTER
);
error_answer!(
    Internal,
    "Something failed on the desk's side (`internal`); it is logged"
);
error_answer!(
    Unavailable,
    "The desk's database is not answering (`database_unavailable`) or its storage is full \
     (`storage_full`); nothing was changed",
    RETRY_AFTER
);
error_answer!(
    FleetUnavailable,
    "The backup fleet cannot be reached (`fleet_unavailable`), or the desk's database is not \
     answering (`database_unavailable`) or its storage is full (`storage_full`); nothing was \
     changed",
    RETRY_AFTER
);

/// Adds the answers every route shares to each operation that lacks them.
struct SharedResponses;

fn operations(item: &mut utoipa::openapi::PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                let reads = |place: ParameterIn| {
                    operation.parameters.iter().flatten().any(|p| match p {
                        RefOr::T(p) => p.parameter_in == place,
                        RefOr::Ref(_) => false,
                    })
                };
                let (path, query) = (reads(ParameterIn::Path), reads(ParameterIn::Query));
                let body = operation.request_body.is_some();
                let mut shared = Vec::new();
                if secured {
                    shared.push(("401", "Unauthenticated"));
                }
                if path {
                    shared.push(("404", "NotFound"));
                }
                shared.push(("405", "MethodNotAllowed"));
                if body {
                    shared.push(("413", "PayloadTooLarge"));
                }
                if body || query {
                    shared.push(("422", "InvalidInput"));
                }
                shared.push(("500", "Internal"));
                shared.push(("503", "Unavailable"));
                for (status, name) in shared {
                    operation
                        .responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| Ref::from_response_name(name).into());
                }
            }
        }
    }
}
