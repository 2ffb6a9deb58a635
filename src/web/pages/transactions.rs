//! What happened around a moment, as a page: the transactions nearest it,
//! DDL and large deletes marked, with links to the pages before and after
//! and, for the cluster's customer, to a request for just before or just
//! after one of them. The request form's panel reads the same address as
//! JSON.

use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;

use super::common::{parse_id, times_for};
use super::{Chrome, chrome, render};
use crate::app::App;
use crate::desk::transactions::{self as log, NamedTransaction, TransactionsAround};
use crate::domain::actor::Role;
use crate::domain::transactions::TxPosition;
use crate::web::ValidPath;
use crate::web::ValidQuery;
use crate::web::api::model::TransactionsOut;
use crate::web::auth::AnyUser;
use crate::web::error::AppResult;
use crate::web::views::{Stamp, Times, micros_in};

#[derive(Debug, Default, Deserialize)]
pub struct AroundQuery {
    #[serde(default)]
    around: Option<String>,
    /// Instead of `around`: a wall-clock time in `time_zone`, as a form
    /// holds it.
    #[serde(default)]
    local_time: Option<String>,
    #[serde(default)]
    time_zone: Option<String>,
    #[serde(default)]
    before: Option<usize>,
    #[serde(default)]
    after: Option<usize>,
}

/// One transaction as a row of the page.
pub struct TransactionRow {
    pub xid: u64,
    pub committed: Stamp,
    pub destructive: bool,
    pub large_delete: bool,
    /// "DROP public.orders"
    pub ddl: Vec<String>,
    /// "public.orders: 5 inserted, 2 updated"
    pub changes: Vec<String>,
    /// For the cluster's customer: a request to just before, and to just
    /// after, this transaction.
    pub restore_before: Option<String>,
    pub restore_after: Option<String>,
    /// The first row at or after the moment looked around.
    pub at_moment: bool,
}

#[derive(Template)]
#[template(path = "transactions.html")]
struct TransactionsPage {
    chrome: Chrome,
    cluster_id: String,
    cluster_name: String,
    around: Stamp,
    from: Stamp,
    to: Stamp,
    zone: &'static str,
    rows: Vec<TransactionRow>,
    earlier: Option<String>,
    later: Option<String>,
    /// Where the cluster's page is for this reader.
    back: String,
    zones_offline: bool,
}

fn counts(t: &NamedTransaction) -> Vec<String> {
    t.rows
        .iter()
        .map(|(relation, rows)| {
            let mut parts = Vec::new();
            for (n, what) in [
                (rows.inserted, "inserted"),
                (rows.updated, "updated"),
                (rows.deleted, "deleted"),
            ] {
                if n > 0 {
                    parts.push(format!("{n} {what}"));
                }
            }
            format!("{}: {}", relation.name, parts.join(", "))
        })
        .collect()
}

fn ddl(t: &NamedTransaction) -> Vec<String> {
    t.ddl
        .iter()
        .map(|(kind, relations)| {
            if relations.is_empty() {
                format!("{kind} (a table's definition)")
            } else {
                let names: Vec<&str> = relations.iter().map(|r| r.name.as_str()).collect();
                format!("{kind} {}", names.join(", "))
            }
        })
        .collect()
}

/// A request form for `cluster` starting at `at`, read in `times`' zone.
/// The form takes whole seconds: just before a commit is the second
/// before it began; just after, the second after it.
fn request_link(
    cluster: &str,
    at: DateTime<Utc>,
    times: &Times,
    xid: u64,
    position: TxPosition,
) -> String {
    let local = at.with_timezone(&times.zone);
    let zone: String = url::form_urlencoded::byte_serialize(times.zone_name().as_bytes()).collect();
    format!(
        "/requests/new?cluster={cluster}&date={}&time={}&time_zone={zone}&transaction={xid}&position={position}",
        local.format("%Y-%m-%d"),
        local.format("%H:%M:%S")
    )
}

fn rows(page: &TransactionsAround, times: &Times, customer: bool) -> Vec<TransactionRow> {
    let cluster = page.cluster.id.to_string();
    let mut marked = false;
    page.transactions
        .iter()
        .map(|t| {
            let at_moment = !marked && t.committed_at >= page.around;
            marked |= at_moment;
            let second = Duration::seconds(1);
            let before = (t.committed_at - Duration::microseconds(1))
                .duration_trunc(second)
                .unwrap_or(t.committed_at);
            let after = t
                .committed_at
                .duration_trunc(second)
                .map(|s| s + second)
                .unwrap_or(t.committed_at);
            TransactionRow {
                xid: t.xid,
                committed: micros_in(t.committed_at, times.zone),
                destructive: t.destructive,
                large_delete: t.large_delete,
                ddl: ddl(t),
                changes: counts(t),
                restore_before: customer
                    .then(|| request_link(&cluster, before, times, t.xid, TxPosition::Before)),
                restore_after: customer
                    .then(|| request_link(&cluster, after, times, t.xid, TxPosition::After)),
                at_moment,
            }
        })
        .collect()
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

pub async fn around(
    State(app): State<App>,
    AnyUser(viewer): AnyUser,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<AroundQuery>,
    headers: HeaderMap,
) -> AppResult<Response> {
    let id = parse_id(&id)?;
    let around = match q
        .local_time
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
    {
        Some(local_time) => {
            let input = crate::domain::validation::TargetInput::Local {
                local_time: local_time.to_string(),
                time_zone: q.time_zone.clone().unwrap_or_else(|| "UTC".into()),
                utc_offset: None,
            };
            crate::domain::validation::parse_target(&input)
                .map_err(|e| {
                    crate::web::error::AppError::from(crate::desk::DeskError::Invalid(vec![e]))
                })?
                .utc
        }
        None => crate::web::api::routes::moment_of(q.around.as_deref(), app.now())?,
    };
    let per_side = log::DEFAULT_PER_SIDE;
    let page = log::around(
        &app,
        &viewer.user,
        id,
        around,
        q.before.unwrap_or(per_side),
        q.after.unwrap_or(per_side),
    )
    .await?;
    if wants_json(&headers) {
        return Ok(Json(TransactionsOut::from(&page)).into_response());
    }
    let times = times_for(&app, &viewer.user);
    let customer = viewer.user.role == Role::Customer;
    let link = |at: DateTime<Utc>, before: usize, after: usize| {
        let at: String = url::form_urlencoded::byte_serialize(
            at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
                .as_bytes(),
        )
        .collect();
        format!(
            "/clusters/{}/transactions?around={at}&before={before}&after={after}",
            page.cluster.id
        )
    };
    let view = TransactionsPage {
        zones_offline: page.zones_offline,
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            format!("What happened on {}", page.cluster.name),
            if customer { "clusters" } else { "queue" },
        )
        .await?,
        cluster_id: page.cluster.id.to_string(),
        cluster_name: page.cluster.name.clone(),
        around: micros_in(page.around, times.zone),
        from: micros_in(page.from, times.zone),
        to: micros_in(page.to, times.zone),
        zone: times.zone_name(),
        rows: rows(&page, &times, customer),
        earlier: page.earlier.map(|at| link(at, per_side * 2, 0)),
        later: page.later.map(|at| link(at, 0, per_side * 2)),
        back: if customer {
            format!("/clusters/{}", page.cluster.id)
        } else {
            "/staff/tickets".to_string()
        },
    };
    render(StatusCode::OK, &view)
}
