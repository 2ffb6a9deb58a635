//! The clusters of the customer's subscription, each with its restorable window.

use std::collections::HashMap;

use crate::domain::ids::TicketId;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::super::common::{
    ClusterCard, LastTestView, TicketRow, cluster_card, fileable, last_test_view, parse_id,
    ticket_row, times_for,
};
use super::super::{Chrome, chrome, render};
use crate::app::App;
use crate::desk::scope_for;
use crate::store::{AssigneeFilter, TicketOrder, TicketQuery};
use crate::web::auth::CustomerUser;
use crate::web::error::{AppError, AppResult};
use crate::web::views::Stamp;
use crate::web::{ValidPath, ValidQuery};

#[derive(Template)]
#[template(path = "customer/clusters.html")]
struct ClustersPage {
    chrome: Chrome,
    /// Each cluster with its last restore test.
    cards: Vec<(ClusterCard, Option<LastTestView>)>,
    zone: &'static str,
}

pub async fn clusters(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let mut cards = Vec::new();
    for cluster in app.store.clusters(scope_for(&viewer.user), true).await? {
        if cluster.deleted_at.is_some() && !fileable(&app, &cluster) {
            continue;
        }
        // A subscription has a few clusters: each reads its own tests.
        let drills = crate::desk::drills::of_cluster(&app, cluster.id).await?;
        let last = last_test_view(drills.last(), &times);
        cards.push((cluster_card(&app, cluster, &times, None).await?, last));
    }
    let page = ClustersPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Clusters", "clusters").await?,
        cards,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct TargetQuery {
    #[serde(default)]
    target: String,
}

#[derive(Template)]
#[template(path = "customer/cluster.html")]
struct ClusterPage {
    chrome: Chrome,
    card: ClusterCard,
    fileable: bool,
    restored_from: Option<(TicketId, Stamp)>,
    /// Its last restore test; none before the first.
    last_test: Option<LastTestView>,
    tickets: Vec<TicketRow>,
    zone: &'static str,
}

pub async fn cluster(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidPath(id): ValidPath<String>,
    ValidQuery(q): ValidQuery<TargetQuery>,
) -> AppResult<Response> {
    let scope = scope_for(&viewer.user);
    let cluster = app
        .store
        .cluster(parse_id(&id)?, scope)
        .await?
        .ok_or_else(AppError::not_found)?;
    let times = times_for(&app, &viewer.user);
    let target = DateTime::parse_from_rfc3339(q.target.trim())
        .ok()
        .map(|t| t.with_timezone(&Utc));
    let tickets = app
        .store
        .tickets(&TicketQuery {
            scope,
            states: vec![],
            severity: None,
            assignee: AssigneeFilter::Anyone,
            response_due_before: None,
            search: None,
            order: TicketOrder::Newest { before: None },
            limit: 200,
        })
        .await?;
    let names = HashMap::from([(cluster.id, cluster.name.clone())]);
    let rows = tickets
        .into_iter()
        .filter(|t| t.cluster_id == cluster.id)
        .take(20)
        .map(|t| ticket_row(t, &times, &names, &HashMap::new(), None))
        .collect();
    let restored_from = cluster
        .restored_from
        .as_ref()
        .map(|r| (r.ticket_id, times.stamp(r.point_in_time)));
    let drills = crate::desk::drills::of_cluster(&app, cluster.id).await?;
    let last_test = last_test_view(drills.last(), &times);
    let page = ClusterPage {
        last_test,
        chrome: chrome(
            &viewer.session,
            Some(&viewer.user),
            cluster.name.clone(),
            "clusters",
        )
        .await?,
        fileable: fileable(&app, &cluster),
        card: cluster_card(&app, cluster, &times, target).await?,
        restored_from,
        tickets: rows,
        zone: times.zone_name(),
    };
    render(StatusCode::OK, &page)
}
