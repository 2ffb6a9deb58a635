//! The restore request form, its live check, and filing.

use std::sync::{Arc, LazyLock};

use crate::domain::ids::ClusterId;
use askama::Template;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::super::common::{ClusterCard, cluster_card, fileable, times_for};
use super::super::{Chrome, FormErrors, chrome, flash, render};
use crate::app::App;
use crate::desk::read::cluster_backups;
use crate::desk::{self, FilingRequest, scope_for};
use crate::domain::cluster::Cluster;
use crate::domain::sla::Severity;
use crate::domain::transactions::TransactionTarget;
use crate::domain::validation::{
    TargetInput, TargetTime, fold_offsets, format_offset, parse_target,
};
use crate::store::User;
use crate::web::auth::{ClientAddr, CustomerUser};
use crate::web::error::{AppError, AppResult, ErrorCode, FieldError};
use crate::web::limits::Limits;
use crate::web::timeline;
use crate::web::views::{precise_in, zone_of, zones_back};
use crate::web::{ValidForm, ValidQuery};

pub struct ClusterOption {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

pub(super) async fn fileable_clusters(app: &App, user: &User) -> AppResult<Vec<Cluster>> {
    Ok(app
        .store
        .clusters(scope_for(user), true)
        .await?
        .into_iter()
        .filter(|c| fileable(app, c))
        .collect())
}

pub(super) async fn cluster_options(
    app: &App,
    user: &User,
    selected: Option<&str>,
) -> AppResult<Vec<ClusterOption>> {
    Ok(fileable_clusters(app, user)
        .await?
        .into_iter()
        .map(|c| ClusterOption {
            selected: selected == Some(c.id.to_string().as_str()),
            label: match c.deleted_at {
                Some(_) => format!("{} (deleted) — {} / {}", c.name, c.resource_group, c.region),
                None => format!("{} — {} / {}", c.name, c.resource_group, c.region),
            },
            id: c.id.to_string(),
        })
        .collect())
}

/// IANA zones for the time zone list: the canonical `Area/City` names and UTC.
pub(crate) static ZONES: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut zones: Vec<&'static str> = chrono_tz::TZ_VARIANTS
        .iter()
        .map(|tz| tz.name())
        .filter(|name| {
            name.contains('/')
                && !name.starts_with("Etc/")
                && !name.starts_with("SystemV/")
                && !name.starts_with("US/")
                && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        })
        .collect();
    zones.push("UTC");
    zones.sort_unstable();
    zones
});

/// The request form as typed. Every field is text, so what the customer
/// typed comes back unchanged when something is refused.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RequestForm {
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub date: String,
    #[serde(default)]
    pub time: String,
    #[serde(default)]
    pub time_zone: String,
    #[serde(default)]
    pub utc_offset: String,
    #[serde(default)]
    pub new_cluster_name: String,
    #[serde(default)]
    pub severity: String,
    #[serde(default)]
    pub description: String,
    /// `check` only checks; anything else files.
    #[serde(default)]
    pub intent: String,
    /// A transaction to restore to just `before` or `after` (`position`),
    /// chosen from what happened around the moment.
    #[serde(default)]
    pub transaction: String,
    #[serde(default)]
    pub position: String,
    /// `yes`: stop the restored copy paused for inspection first.
    #[serde(default)]
    pub inspect: String,
}

impl RequestForm {
    fn local_time(&self) -> String {
        super::super::common::local_time_of(&self.date, &self.time)
    }

    fn severity(&self) -> Option<Severity> {
        Severity::parse_typed(&self.severity).ok()
    }

    /// A transaction chosen from what happened around the moment, when
    /// both of its fields were sent.
    fn transaction(&self) -> Option<TransactionTarget> {
        Some(TransactionTarget {
            xid: self.transaction.trim().parse().ok()?,
            position: self.position.trim().parse().ok()?,
        })
    }

    fn filing(&self) -> FilingRequest {
        FilingRequest {
            transaction: self.transaction(),
            cluster_id: self.cluster_id.parse().ok(),
            target: TargetInput::Local {
                local_time: self.local_time(),
                time_zone: self.time_zone.clone(),
                utc_offset: Some(self.utc_offset.clone()).filter(|o| !o.trim().is_empty()),
            },
            new_cluster_name: self.new_cluster_name.clone(),
            // An unknown severity is refused by `assess` before anything is filed.
            severity: self.severity().unwrap_or(Severity::C),
            description: self.description.clone(),
            inspect: self.inspect == "yes",
        }
    }
}

/// The answer of the live check, as the form and its script show it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Preview {
    pub ok: bool,
    /// The target in UTC, RFC 3339, once the date and time parse.
    pub utc: Option<String>,
    pub utc_text: Option<String>,
    pub local_text: Option<String>,
    pub plan_text: Option<String>,
    pub window_text: Option<String>,
    pub deadline_text: Option<String>,
    /// The two readings of a time that happens twice, e.g. `+02:00`, `+01:00`.
    pub fold_offsets: Vec<String>,
    pub errors: Vec<FieldError>,
    /// Where the target sits on the cluster's timeline.
    pub target_marker: Option<crate::web::timeline::Marker>,
    /// "orders-prod already has an open request:", with those requests,
    /// so the warning follows the cluster chosen in the form.
    pub duplicates_text: Option<String>,
    pub duplicates: Vec<super::super::common::OpenRequest>,
}

/// What the check of a form found: the preview to show, and the refusal.
struct Assessment {
    preview: Preview,
    error: Option<AppError>,
}

/// Runs `desk::check_request` on what was typed and prepares what the
/// customer reads: the UTC equivalent, the plan, or every refusal.
async fn assess(app: &App, user: &User, form: &RequestForm) -> Assessment {
    let request = form.filing();
    let entered = zone_of(&form.time_zone);
    let reader = zone_of(&user.time_zone);
    let parsed: Option<TargetTime> = parse_target(&request.target).ok();
    let local_time = form.local_time();
    let mut preview = Preview {
        utc: parsed.map(|t| crate::web::views::iso(t.utc)),
        utc_text: parsed.map(|t| t.utc.format("%Y-%m-%d %H:%M:%S UTC").to_string()),
        local_text: parsed.map(|t| format!("{} ({})", precise_in(t.utc, entered), entered.name())),
        fold_offsets: form
            .time_zone
            .parse::<Tz>()
            .map(|tz| fold_offsets(&local_time, tz))
            .unwrap_or_default()
            .into_iter()
            .map(format_offset)
            .collect(),
        ..Preview::default()
    };
    let mut errors = Vec::new();
    if form.severity().is_none() {
        errors.push(FieldError {
            code: ErrorCode::InvalidInput,
            message: "Choose a severity: A, B or C".into(),
            field: Some("severity".into()),
        });
    }
    let error = match desk::check_request(app, user, &request).await {
        Ok(checked) => {
            preview.plan_text = Some(match checked.transaction {
                Some(transaction) => {
                    // The moment it stands for, not the second typed.
                    let commit = transaction.committed_at(checked.target.utc);
                    preview.utc = Some(crate::web::views::iso(checked.target.utc));
                    preview.utc_text =
                        Some(crate::web::views::micros_in(checked.target.utc, Tz::UTC).utc);
                    format!(
                        "Restorable: {}, committed {}, from snapshot {} in {}",
                        transaction.describe(),
                        crate::web::views::micros_in(commit, entered).local,
                        checked.plan.snapshot_id,
                        checked.plan.zone
                    )
                }
                None => format!(
                    "Restorable: from snapshot {} in {}, with the log replayed to the target",
                    checked.plan.snapshot_id, checked.plan.zone
                ),
            });
            preview.deadline_text = Some(format!(
                "This moment stays restorable until {}",
                precise_in(checked.deadline, reader)
            ));
            None
        }
        Err(e) => {
            let error = AppError::from(e);
            for mut e in error.field_errors() {
                if local_time.is_empty()
                    && matches!(e.field.as_deref(), Some("local_time" | "target_time"))
                {
                    e.message = "Enter the date and the time to restore to".into();
                }
                errors.push(e);
            }
            Some(error)
        }
    };
    preview.ok = errors.is_empty();
    preview.errors = errors;
    // The chosen cluster's window, and where the target falls on its timeline.
    if let Some(cluster_id) = request.cluster_id
        && let Ok(Some(cluster)) = app.store.cluster(cluster_id, scope_for(user)).await
        && let Ok(backups) = cluster_backups(app, &cluster).await
    {
        let (now, window) = (backups.now, backups.window_now);
        preview.target_marker =
            parsed.map(|t| timeline::target_marker(t.utc, window, now, &app.policy(), reader));
        let offline: Vec<&str> = backups.offline_zones().iter().map(|z| z.as_str()).collect();
        let when_back = backups.wider_when_back().map(|from| {
            format!(
                "from {} when {}",
                precise_in(from, reader),
                zones_back(&offline)
            )
        });
        preview.window_text = match (window, when_back) {
            (Some(w), None) => Some(format!(
                "{} can be restored to a moment from {} to {}",
                cluster.name,
                precise_in(w.earliest, reader),
                precise_in(w.latest, reader)
            )),
            (Some(w), Some(back)) => Some(format!(
                "{} can be restored now to a moment from {} to {}; {back}",
                cluster.name,
                precise_in(w.earliest, reader),
                precise_in(w.latest, reader)
            )),
            (None, Some(back)) => Some(format!(
                "{} cannot be restored from the zones online now; {back}",
                cluster.name
            )),
            (None, None) => None,
        };
    }
    Assessment { preview, error }
}

#[derive(Template)]
#[template(path = "customer/request_form.html")]
struct RequestPage {
    chrome: Chrome,
    form: RequestForm,
    clusters: Vec<ClusterOption>,
    zones: &'static [&'static str],
    errors: FormErrors,
    preview: Option<Preview>,
    card: Option<ClusterCard>,
    /// The time zone list follows the browser until the customer picks one.
    zone_from_browser: bool,
    /// Open requests for the chosen cluster: filing another is allowed,
    /// but the customer should know.
    duplicates: Vec<super::super::common::OpenRequest>,
    duplicates_text: String,
}

impl RequestPage {
    fn folds(&self) -> Vec<String> {
        self.preview
            .as_ref()
            .map(|p| p.fold_offsets.clone())
            .unwrap_or_default()
    }

    fn is_zone(&self, zone: &str) -> bool {
        self.form.time_zone == zone
    }

    fn severities(&self) -> Vec<(&'static str, &'static str, bool)> {
        Severity::ALL
            .into_iter()
            .map(|s| (s.as_str(), s.describe(), self.form.severity == s.as_str()))
            .collect()
    }
}

async fn request_page(
    app: &App,
    viewer: &crate::web::auth::Viewer,
    form: RequestForm,
    errors: FormErrors,
    preview: Option<Preview>,
    zone_from_browser: bool,
) -> AppResult<RequestPage> {
    let user = &viewer.user;
    let times = times_for(app, user);
    let target = preview
        .as_ref()
        .and_then(|p| p.utc.as_deref())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc));
    let card = match form.cluster_id.parse::<ClusterId>() {
        Ok(id) => match app.store.cluster(id, scope_for(user)).await? {
            Some(cluster) => Some(cluster_card(app, cluster, &times, target).await?),
            None => None,
        },
        Err(_) => None,
    };
    let duplicates = match &card {
        Some(card) => open_requests_for(app, user, card.cluster.id).await?,
        None => Vec::new(),
    };
    Ok(RequestPage {
        duplicates_text: card
            .as_ref()
            .map(|c| duplicates_heading(&c.cluster.name, duplicates.len()))
            .unwrap_or_default(),
        duplicates,
        chrome: chrome(
            &viewer.session,
            Some(user),
            "Restore a cluster from a backup",
            "support",
        )
        .await?,
        clusters: cluster_options(app, user, Some(form.cluster_id.trim())).await?,
        zones: ZONES.as_slice(),
        errors,
        preview,
        card,
        zone_from_browser,
        form,
    })
}

#[derive(Debug, Default, Deserialize)]
pub struct NewRequestQuery {
    #[serde(default)]
    cluster: String,
    /// A closed request of the customer's that this one follows up on.
    #[serde(default)]
    follow_up: String,
    /// A moment to start from (what happened around a moment links here):
    /// the date, the time and the zone they are in.
    #[serde(default)]
    date: String,
    #[serde(default)]
    time: String,
    #[serde(default)]
    time_zone: String,
    /// Just `position` (before or after) transaction `transaction`.
    #[serde(default)]
    transaction: String,
    #[serde(default)]
    position: String,
}

pub async fn new_request(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidQuery(q): ValidQuery<NewRequestQuery>,
) -> AppResult<Response> {
    let times = times_for(&app, &viewer.user);
    let clusters = fileable_clusters(&app, &viewer.user).await?;
    let chosen = clusters
        .iter()
        .find(|c| c.id.to_string() == q.cluster.trim());
    let local_now = times.now.with_timezone(&times.zone);
    // A moment chosen elsewhere comes with its zone: the browser's zone
    // must not replace it.
    let given = !q.date.trim().is_empty() && !q.time.trim().is_empty();
    let form = RequestForm {
        cluster_id: chosen.map(|c| c.id.to_string()).unwrap_or_default(),
        date: if given {
            q.date.trim().to_string()
        } else {
            local_now.format("%Y-%m-%d").to_string()
        },
        time: if given {
            q.time.trim().to_string()
        } else {
            String::new()
        },
        time_zone: if given && !q.time_zone.trim().is_empty() {
            q.time_zone.trim().to_string()
        } else {
            times.zone_name().to_string()
        },
        new_cluster_name: chosen
            .map(|c| format!("{}-restored", c.name))
            .unwrap_or_default(),
        severity: "B".into(),
        description: follow_up_text(&app, &viewer.user, &q.follow_up).await?,
        transaction: if given {
            q.transaction.trim().to_string()
        } else {
            String::new()
        },
        position: if given {
            q.position.trim().to_string()
        } else {
            String::new()
        },
        ..RequestForm::default()
    };
    let preview = if given {
        Some(assess(&app, &viewer.user, &form).await.preview)
    } else {
        None
    };
    let page = request_page(&app, &viewer, form, FormErrors::default(), preview, !given).await?;
    render(StatusCode::OK, &page)
}

/// The description a follow-up starts with, linking the request it
/// follows; nothing for a ticket the customer cannot see.
async fn follow_up_text(
    app: &App,
    user: &crate::store::User,
    follow_up: &str,
) -> AppResult<String> {
    let Ok(id) = follow_up.parse::<crate::domain::ids::TicketId>() else {
        return Ok(String::new());
    };
    Ok(match app.store.ticket(id, scope_for(user)).await? {
        Some(ticket) => format!("Follow-up to {}: ", ticket.reference()),
        None => String::new(),
    })
}

/// `POST /requests`: checks (`intent=check`) or files the request.
pub async fn file_request(
    State(app): State<App>,
    State(limits): State<Arc<Limits>>,
    CustomerUser(viewer): CustomerUser,
    ClientAddr(addr): ClientAddr,
    ValidForm(form): ValidForm<RequestForm>,
) -> AppResult<Response> {
    let checking = form.intent == "check";
    if !checking && let Err(limited) = limits.filing(viewer.user.id, addr) {
        let errors = FormErrors(vec![FieldError {
            code: limited.code,
            message: limited.message.clone(),
            field: None,
        }]);
        let page = request_page(&app, &viewer, form, errors, None, false).await?;
        let mut response = render(StatusCode::TOO_MANY_REQUESTS, &page)?;
        if let Some(wait) = limited.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, wait.into());
        }
        return Ok(response);
    }
    let assessment = assess(&app, &viewer.user, &form).await;
    if checking || !assessment.preview.ok {
        let status = if assessment.preview.ok {
            StatusCode::OK
        } else {
            assessment
                .error
                .as_ref()
                .map(|e| e.status)
                .filter(|s| s.is_server_error() || *s == StatusCode::FORBIDDEN)
                .unwrap_or(StatusCode::UNPROCESSABLE_ENTITY)
        };
        let errors = FormErrors(assessment.preview.errors.clone());
        let page =
            request_page(&app, &viewer, form, errors, Some(assessment.preview), false).await?;
        return render(status, &page);
    }
    let request = form.filing();
    match desk::file_ticket(&app, &viewer.user, &request).await {
        Ok(ticket) => {
            flash(
                &viewer.session,
                format!(
                    "Request {} is filed. We emailed you a confirmation; an engineer will pick \
                     it up.",
                    ticket.reference()
                ),
            )
            .await?;
            Ok(Redirect::to(&format!("/tickets/{}", ticket.id)).into_response())
        }
        Err(error) => {
            // The window may have moved, or the name was taken, since the check.
            let error = AppError::from(error);
            if error.status.is_server_error() {
                return Err(error);
            }
            let status = error.status;
            let mut preview = assessment.preview;
            preview.ok = false;
            preview.errors = error.field_errors();
            let errors = FormErrors(preview.errors.clone());
            let page = request_page(&app, &viewer, form, errors, Some(preview), false).await?;
            render(status, &page)
        }
    }
}

/// `GET /requests/preview`: the live check behind the form's script. Writes
/// nothing; name errors wait until a name is typed.
pub async fn preview(
    State(app): State<App>,
    CustomerUser(viewer): CustomerUser,
    ValidQuery(form): ValidQuery<RequestForm>,
) -> AppResult<Json<Preview>> {
    let mut preview = assess(&app, &viewer.user, &form).await.preview;
    if form.new_cluster_name.trim().is_empty() {
        preview
            .errors
            .retain(|e| e.field.as_deref() != Some("new_cluster_name"));
    }
    preview
        .errors
        .retain(|e| e.field.as_deref() != Some("severity"));
    if form.cluster_id.trim().is_empty() {
        preview
            .errors
            .retain(|e| e.field.as_deref() != Some("cluster_id"));
    }
    preview.ok = preview.errors.is_empty() && preview.plan_text.is_some();
    if let Ok(id) = form.cluster_id.trim().parse::<ClusterId>()
        && let Some(cluster) = app.store.cluster(id, scope_for(&viewer.user)).await?
    {
        preview.duplicates = open_requests_for(&app, &viewer.user, id).await?;
        preview.duplicates_text = Some(duplicates_heading(&cluster.name, preview.duplicates.len()));
    }
    Ok(Json(preview))
}

/// The customer's open requests for `cluster`, newest first.
async fn open_requests_for(
    app: &App,
    user: &User,
    cluster: ClusterId,
) -> AppResult<Vec<super::super::common::OpenRequest>> {
    super::super::common::open_requests(app, scope_for(user), |t| t.cluster_id == cluster).await
}

/// The warning's first line: "orders-prod already has an open request:".
fn duplicates_heading(cluster: &str, count: usize) -> String {
    match count {
        1 => format!("{cluster} already has an open request:"),
        n => format!("{cluster} already has {n} open requests:"),
    }
}
