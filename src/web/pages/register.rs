//! Registering a cluster that already runs on a source host, from the
//! admin clusters page: the form as typed, read into the desk's
//! `Registration`; `desk::clusters` keeps the rules and the audit trail.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::admin::clusters_page;
use super::{flash, refused};
use crate::app::App;
use crate::desk::admin::Operator;
use crate::desk::clusters::{self, DEFAULT_BACKREST_CONFIG, Registration};
use crate::domain::catalog::Zone;
use crate::domain::host::HostRole;
use crate::web::ValidForm;
use crate::web::auth::AdminUser;
use crate::web::error::{AppError, AppResult};

/// The form's fields, as `desk::clusters` names them in a refusal.
pub const FIELDS: [&str; 18] = [
    "name",
    "subscription",
    "resource_group",
    "region",
    "host",
    "port",
    "stanza",
    "data_directory",
    "socket_directory",
    "backrest_config",
    "database",
    "user",
    "tier",
    "vcores",
    "storage_gib",
    "node_count",
    "server_version",
    "zones",
];

/// The registration form as typed: every field text, so that a refusal
/// shows it again as it was.
#[derive(Debug, Clone, Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub subscription: String,
    #[serde(default)]
    pub resource_group: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: String,
    #[serde(default)]
    pub stanza: String,
    #[serde(default)]
    pub data_directory: String,
    #[serde(default)]
    pub socket_directory: String,
    #[serde(default)]
    pub backrest_config: String,
    #[serde(default)]
    pub database: String,
    #[serde(default)]
    pub user: String,
    #[serde(default)]
    pub tier: String,
    #[serde(default)]
    pub vcores: String,
    #[serde(default)]
    pub storage_gib: String,
    #[serde(default)]
    pub node_count: String,
    /// A ticked box: "yes".
    #[serde(default)]
    pub high_availability: String,
    #[serde(default)]
    pub server_version: String,
    /// Ticked zone boxes: "yes" each. None ticked: all three.
    #[serde(default)]
    pub zone_az1: String,
    #[serde(default)]
    pub zone_az2: String,
    #[serde(default)]
    pub zone_az3: String,
}

impl Default for RegisterForm {
    fn default() -> RegisterForm {
        RegisterForm {
            name: String::new(),
            subscription: String::new(),
            resource_group: String::new(),
            region: String::new(),
            host: String::new(),
            port: "5432".into(),
            stanza: String::new(),
            data_directory: String::new(),
            socket_directory: String::new(),
            backrest_config: DEFAULT_BACKREST_CONFIG.into(),
            database: "postgres".into(),
            user: "postgres".into(),
            tier: "GeneralPurpose".into(),
            vcores: String::new(),
            storage_gib: String::new(),
            node_count: "1".into(),
            high_availability: String::new(),
            server_version: "15".into(),
            zone_az1: "yes".into(),
            zone_az2: "yes".into(),
            zone_az3: "yes".into(),
        }
    }
}

impl RegisterForm {
    pub fn zone_ticked(&self, zone: &str) -> bool {
        let ticked = |v: &str| v == "yes";
        match zone {
            "az1" => ticked(&self.zone_az1),
            "az2" => ticked(&self.zone_az2),
            "az3" => ticked(&self.zone_az3),
            _ => false,
        }
    }

    /// What was typed as the desk reads it; a number that is not one is
    /// refused here, by field.
    fn registration(&self) -> AppResult<Registration> {
        let number = |text: &str, field: &str, what: &str| {
            text.trim()
                .parse::<i64>()
                .map_err(|_| AppError::invalid(field, format!("Give {what} as a whole number")))
        };
        let optional = |text: &str| Some(text.trim().to_string()).filter(|t| !t.is_empty());
        let zones: Vec<Zone> = Zone::ALL
            .into_iter()
            .filter(|z| self.zone_ticked(z.as_str()))
            .collect();
        Ok(Registration {
            name: self.name.trim().to_string(),
            subscription: self.subscription.trim().to_string(),
            resource_group: self.resource_group.clone(),
            region: optional(&self.region),
            host: self.host.trim().to_string(),
            port: number(&self.port, "port", "the port")?,
            stanza: self.stanza.trim().to_string(),
            data_directory: self.data_directory.trim().to_string(),
            socket_directory: optional(&self.socket_directory),
            backrest_config: optional(&self.backrest_config),
            database: self.database.trim().to_string(),
            user: self.user.trim().to_string(),
            tier: self.tier.clone(),
            vcores: number(&self.vcores, "vcores", "the vCores")?,
            storage_gib: number(&self.storage_gib, "storage_gib", "the storage in GiB")?,
            node_count: number(&self.node_count, "node_count", "the number of nodes")?,
            high_availability: self.high_availability == "yes",
            server_version: self.server_version.trim().to_string(),
            zones: (!zones.is_empty()).then_some(zones),
        })
    }
}

/// What the page offers to register with: the source hosts and the
/// subscriptions, each `(name, chosen)`. No source host: no form.
pub struct RegisterSection {
    pub form: RegisterForm,
    pub hosts: Vec<(String, bool)>,
    pub subscriptions: Vec<(String, bool)>,
}

impl RegisterSection {
    pub async fn of(app: &App, form: RegisterForm) -> AppResult<Option<RegisterSection>> {
        let hosts: Vec<(String, bool)> = app
            .store
            .fleet_hosts()
            .await?
            .into_iter()
            .filter(|h| h.role == HostRole::Source)
            .map(|h| {
                let chosen = h.name == form.host;
                (h.name, chosen)
            })
            .collect();
        if hosts.is_empty() {
            return Ok(None);
        }
        let subscriptions = app
            .store
            .subscriptions()
            .await?
            .into_iter()
            .map(|s| {
                let chosen = s.slug == form.subscription;
                (s.slug, chosen)
            })
            .collect();
        Ok(Some(RegisterSection {
            form,
            hosts,
            subscriptions,
        }))
    }
}

/// `POST /admin/clusters`: registers a cluster; a refusal shows the form
/// again as typed, with why beside the field, and stores nothing.
pub async fn register(
    State(app): State<App>,
    AdminUser(viewer): AdminUser,
    ValidForm(form): ValidForm<RegisterForm>,
) -> AppResult<Response> {
    let registered = match form.registration() {
        Ok(registration) => clusters::register(&app, Operator::Admin(&viewer.user), &registration)
            .await
            .map_err(AppError::from),
        Err(error) => Err(error),
    };
    match registered {
        Ok(cluster) => {
            flash(
                &viewer.session,
                format!(
                    "{} is registered: its window is what the zones hold of stanza {}.",
                    cluster.name, form.stanza
                ),
            )
            .await?;
            Ok(Redirect::to("/admin/clusters").into_response())
        }
        Err(error) => refused(error, |errors| clusters_page(&app, &viewer, errors, form)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_refused_by_field_and_no_zone_ticked_means_all() {
        let form = RegisterForm {
            name: "orders".into(),
            vcores: "two".into(),
            storage_gib: "32".into(),
            ..RegisterForm::default()
        };
        assert_eq!(
            form.registration().unwrap_err().field.as_deref(),
            Some("vcores")
        );
        let form = RegisterForm {
            vcores: " 2 ".into(),
            zone_az1: String::new(),
            zone_az2: String::new(),
            zone_az3: String::new(),
            socket_directory: "  ".into(),
            ..form
        };
        let registration = form.registration().unwrap();
        assert_eq!(registration.vcores, 2);
        assert_eq!(registration.zones, None);
        assert_eq!(registration.socket_directory, None);
        let form = RegisterForm {
            zone_az2: "yes".into(),
            ..form
        };
        assert_eq!(form.registration().unwrap().zones, Some(vec![Zone::Az2]));
    }
}
