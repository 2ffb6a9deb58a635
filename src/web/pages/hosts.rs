//! The fleet's hosts for admins: each with its role and place, when its
//! workers last reported, its free room and what runs there; a form to
//! add or replace a host and a button to remove one. Every change goes
//! through `desk::hosts`, which keeps the rules and the audit trail.

use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::common::times_for;
use super::{Chrome, FormErrors, chrome, flash, refused, render};
use crate::app::App;
use crate::desk::hosts::{self, HostInput, HostStatus};
use crate::domain::catalog::Zone;
use crate::domain::eta::size_words;
use crate::domain::host::{DEFAULT_TLS_PORT, HostRole};
use crate::web::auth::{AdminUser, Viewer};
use crate::web::error::{AppError, AppResult};
use crate::web::views::{Stamp, Times};
use crate::web::{ValidForm, ValidPath, ValidQuery};

/// The form's fields, in the order the page shows them.
const FIELDS: [&str; 7] = [
    "name",
    "role",
    "address",
    "zone",
    "data_root",
    "max_restores",
    "tls_port",
];

/// A host as the table shows it.
pub struct HostRow {
    pub name: String,
    pub configured: bool,
    pub role: &'static str,
    pub address: Option<String>,
    pub zone: Option<String>,
    pub data_root: Option<String>,
    pub limit: Option<i64>,
    pub tls_port: Option<u16>,
    pub last_seen: Option<Stamp>,
    /// "1.4 TB free"
    pub free: Option<String>,
    pub running: i64,
    /// `(badge class, words)`: alive, lost, or never heard from.
    pub status: (&'static str, &'static str),
    /// Why removing it was refused just now.
    pub remove_errors: Vec<String>,
}

impl HostRow {
    fn of(host: HostStatus, times: &Times) -> HostRow {
        let status = match (&host.heartbeat, host.alive) {
            (Some(_), true) => ("done", "alive"),
            (Some(_), false) => ("bad", "lost"),
            (None, _) => ("muted", "not heard from"),
        };
        HostRow {
            configured: host.configured(),
            role: host.role().as_str(),
            limit: host.max_restores(),
            last_seen: times.maybe(host.last_seen_at()),
            free: host.free_bytes().map(|b| format!("{} free", size_words(b))),
            running: host.restores_running,
            status,
            address: host.config.as_ref().map(|c| c.address.clone()),
            zone: host
                .config
                .as_ref()
                .and_then(|c| c.zone)
                .map(|z| z.to_string()),
            data_root: host.config.as_ref().and_then(|c| c.data_root.clone()),
            tls_port: host.config.as_ref().map(|c| c.tls_port),
            remove_errors: Vec::new(),
            name: host.name,
        }
    }
}

/// The add-or-replace form as typed.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HostForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub address: String,
    /// Empty: none.
    #[serde(default)]
    pub zone: String,
    #[serde(default)]
    pub data_root: String,
    /// Empty: none.
    #[serde(default)]
    pub max_restores: String,
    /// Empty: 8432.
    #[serde(default)]
    pub tls_port: String,
}

impl HostForm {
    fn blank() -> HostForm {
        HostForm {
            role: HostRole::Restore.as_str().into(),
            tls_port: DEFAULT_TLS_PORT.to_string(),
            ..HostForm::default()
        }
    }

    fn of(input: &HostInput) -> HostForm {
        HostForm {
            name: input.name.clone(),
            role: input.role.clone(),
            address: input.address.clone(),
            zone: input.zone.clone().unwrap_or_default(),
            data_root: input.data_root.clone().unwrap_or_default(),
            max_restores: input
                .max_restores
                .map(|n| n.to_string())
                .unwrap_or_default(),
            tls_port: input.tls_port.map(|n| n.to_string()).unwrap_or_default(),
        }
    }

    /// What was typed as the desk reads it; a number that is not one is
    /// refused here, by field.
    fn input(&self) -> AppResult<HostInput> {
        let number = |text: &str, field: &str, message: &str| match text.trim() {
            "" => Ok(None),
            text => text
                .parse::<i64>()
                .map(Some)
                .map_err(|_| AppError::invalid(field, message)),
        };
        let optional = |text: &str| Some(text.to_string()).filter(|t| !t.trim().is_empty());
        Ok(HostInput {
            name: self.name.clone(),
            role: self.role.clone(),
            address: self.address.clone(),
            zone: optional(&self.zone),
            data_root: optional(&self.data_root),
            max_restores: number(
                &self.max_restores,
                "max_restores",
                "Give the limit as a whole number, 1 to 64, or leave it empty for a host that \
                 runs no restores",
            )?,
            tls_port: number(
                &self.tls_port,
                "tls_port",
                "Give the TLS port as a whole number, 1 to 65535, or leave it empty for 8432",
            )?,
        })
    }
}

#[derive(Template)]
#[template(path = "admin/hosts.html")]
struct HostsPage {
    chrome: Chrome,
    rows: Vec<HostRow>,
    form: HostForm,
    errors: FormErrors,
    zone: &'static str,
    lost_seconds: i64,
}

impl HostsPage {
    /// Refusals about no field of the form.
    fn other_errors(&self) -> Vec<String> {
        self.errors.other(&FIELDS)
    }

    /// `(value, label, selected)` for the role list.
    fn roles(&self) -> Vec<(&'static str, &'static str, bool)> {
        HostRole::ALL
            .into_iter()
            .map(|r| {
                let label = match r {
                    HostRole::Source => "Source: runs customers' clusters",
                    HostRole::Zone => "Zone: keeps one zone's backups",
                    HostRole::Restore => "Restore: runs restores",
                };
                (r.as_str(), label, self.form.role.trim() == r.as_str())
            })
            .collect()
    }

    /// `(value, label, selected)` for the zone list, "none" first.
    fn zones(&self) -> Vec<(&'static str, &'static str, bool)> {
        let chosen = self.form.zone.trim();
        std::iter::once(("", "None (not a zone host)", chosen.is_empty()))
            .chain(Zone::ALL.map(|z| (z.as_str(), z.as_str(), chosen == z.as_str())))
            .collect()
    }
}

async fn hosts_page(
    app: &App,
    viewer: &Viewer,
    form: HostForm,
    errors: FormErrors,
    refused_removal: Option<(String, Vec<String>)>,
) -> AppResult<Response> {
    let times = times_for(app, &viewer.user);
    let mut rows: Vec<HostRow> = hosts::list(app)
        .await?
        .into_iter()
        .map(|h| HostRow::of(h, &times))
        .collect();
    if let Some((name, messages)) = refused_removal
        && let Some(row) = rows.iter_mut().find(|r| r.name == name)
    {
        row.remove_errors = messages;
    }
    let page = HostsPage {
        chrome: chrome(&viewer.session, Some(&viewer.user), "Hosts", "hosts").await?,
        rows,
        form,
        errors,
        zone: times.zone_name(),
        lost_seconds: app.settings.host_lost_seconds,
    };
    render(StatusCode::OK, &page)
}

#[derive(Debug, Default, Deserialize)]
pub struct HostsQuery {
    /// A listed host whose values fill the form, to change it.
    #[serde(default)]
    pub edit: Option<String>,
}

/// `GET /admin/hosts`.
pub async fn page(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidQuery(q): ValidQuery<HostsQuery>,
) -> AppResult<Response> {
    let mut form = HostForm::blank();
    if let Some(name) = q.edit.as_deref() {
        let host = app.store.fleet_hosts().await?;
        let host = host
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(AppError::not_found)?;
        form = HostForm::of(&HostInput::from(host));
    }
    hosts_page(&app, &viewer, form, FormErrors::default(), None).await
}

/// `POST /admin/hosts`: adds a host or replaces the one of its name; a
/// refusal shows the form again as typed, with why beside the field.
pub async fn save(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidForm(form): ValidForm<HostForm>,
) -> AppResult<Response> {
    let saved = match form.input() {
        Ok(input) => hosts::put(&app, &viewer.user, &input)
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    match saved {
        Ok(host) => {
            flash(
                &viewer.session,
                format!("Host {} is stored: {}.", host.name, hosts::describe(&host)),
            )
            .await?;
            Ok(Redirect::to("/admin/hosts").into_response())
        }
        Err(error) => {
            refused(error, |errors| {
                hosts_page(&app, &viewer, form, errors, None)
            })
            .await
        }
    }
}

/// `POST /admin/hosts/{name}/remove`: a refusal is shown on the host's row.
pub async fn remove(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidPath(name): ValidPath<String>,
) -> AppResult<Response> {
    match hosts::remove(&app, &viewer.user, &name).await {
        Ok(host) => {
            flash(
                &viewer.session,
                format!("Host {} is removed from the fleet's list.", host.name),
            )
            .await?;
            Ok(Redirect::to("/admin/hosts").into_response())
        }
        Err(error) => {
            refused(error.into(), |errors| {
                let messages = errors.0.into_iter().map(|e| e.message).collect();
                hosts_page(
                    &app,
                    &viewer,
                    HostForm::blank(),
                    FormErrors::default(),
                    Some((name.clone(), messages)),
                )
            })
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_numbers_by_field() {
        let form = HostForm {
            name: "r1".into(),
            role: "restore".into(),
            address: "r1.fleet.test".into(),
            data_root: "/srv".into(),
            max_restores: "three".into(),
            ..HostForm::default()
        };
        let error = form.input().unwrap_err();
        assert_eq!(error.field.as_deref(), Some("max_restores"));
        let form = HostForm {
            max_restores: " 3 ".into(),
            tls_port: String::new(),
            ..form
        };
        let input = form.input().unwrap();
        assert_eq!((input.max_restores, input.tls_port), (Some(3), None));
        assert_eq!(input.zone, None);
    }
}
