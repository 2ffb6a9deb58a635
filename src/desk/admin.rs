//! Administration: people, zones, clusters and injected faults. Each action
//! is checked here and stored together with its audit event, so the web
//! pages and the JSON API apply the same rules and leave the same trail.

use crate::domain::ids::{ClusterId, SubscriptionId, UserId};
use chrono_tz::Tz;
use uuid::Uuid;

use super::DeskError;
use crate::app::App;
use crate::domain::actor::{Actor, Role};
use crate::domain::catalog::Zone;
use crate::domain::email::Email;
use crate::domain::restore_job::JobState;
use crate::password;
use crate::store::{
    AdminWrite, Commit, EventAction, FaultKind, NewEvent, SandboxFault, StoreError, Subscription,
    Unique, User, UserUpdate,
};

fn bad(field: &'static str, message: impl Into<String>) -> DeskError {
    DeskError::BadInput {
        field,
        message: message.into(),
    }
}

fn forbidden() -> DeskError {
    DeskError::Refused(crate::domain::ticket::Refusal::Forbidden)
}

fn require_admin(admin: &User) -> Result<(), DeskError> {
    if admin.role == Role::Admin {
        Ok(())
    } else {
        Err(forbidden())
    }
}

/// Who administers: an admin on a page or the API, or someone with the
/// command line of the machine the desk runs on.
#[derive(Debug, Clone, Copy)]
pub enum Operator<'a> {
    Admin(&'a User),
    CommandLine,
}

impl Operator<'_> {
    pub(crate) fn actor(&self) -> Actor {
        match self {
            Operator::Admin(admin) => admin.actor(),
            Operator::CommandLine => Actor::SYSTEM,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            Operator::Admin(admin) => &admin.email,
            Operator::CommandLine => "the command line",
        }
    }
}

/// A person an admin adds.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    pub email: String,
    pub display_name: String,
    /// `customer`, `staff` or `admin`.
    pub role: String,
    /// Customers only: the subscription's short name, created when new.
    pub subscription: String,
    pub time_zone: String,
    pub password: String,
}

fn parse_person_role(text: &str) -> Result<Role, DeskError> {
    match text.trim().parse::<Role>() {
        Ok(Role::System) | Err(_) => Err(bad("role", "Choose customer, staff or admin")),
        Ok(role) => Ok(role),
    }
}

fn parse_zone_name(text: &str) -> Result<String, DeskError> {
    let text = text.trim();
    let text = if text.is_empty() { "UTC" } else { text };
    text.parse::<Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| {
            bad(
                "time_zone",
                format!("{text:?} is not an IANA time zone such as Europe/Amsterdam"),
            )
        })
}

fn valid_slug(slug: &str) -> bool {
    (2..=40).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Adds a person. A customer's subscription is created if its short name is
/// new; the audit event says so.
pub async fn create_user(app: &App, admin: &User, new: &NewUser) -> Result<User, DeskError> {
    require_admin(admin)?;
    create_user_by(app, Operator::Admin(admin), new).await
}

/// As `create_user`, by whoever operates the desk.
pub async fn create_user_by(
    app: &App,
    operator: Operator<'_>,
    new: &NewUser,
) -> Result<User, DeskError> {
    let email = Email::parse(&new.email).map_err(|e| bad("email", e.to_string()))?;
    let display_name = new.display_name.trim();
    if let Some((_, c)) = crate::domain::text::forbidden_char(display_name) {
        return Err(bad(
            "display_name",
            crate::domain::text::forbidden_char_message("name", c),
        ));
    }
    if display_name.chars().count() > 100 {
        return Err(bad("display_name", "A name has at most 100 characters"));
    }
    let role = parse_person_role(&new.role)?;
    let time_zone = parse_zone_name(&new.time_zone)?;
    password::check_new(&new.password, &email).map_err(|weak| bad("password", weak.to_string()))?;
    if app.store.user_by_email(&email).await?.is_some() {
        return Err(bad(
            "email",
            format!("{email} already exists: each person has one account"),
        ));
    }
    let slug = new.subscription.trim().to_lowercase();
    let mut created_subscription = None;
    let subscription_id = match role {
        Role::Customer => {
            if !valid_slug(&slug) {
                return Err(bad(
                    "subscription",
                    "A customer belongs to a subscription: 2 to 40 lowercase letters, digits \
                     and hyphens, starting with a letter",
                ));
            }
            // A new short name makes a new subscription, in the same
            // commit as its first customer.
            let subscription = match app.store.subscription_by_slug(&slug).await? {
                Some(existing) => existing,
                None => {
                    let subscription = Subscription {
                        id: SubscriptionId::new(),
                        slug: slug.clone(),
                        name: slug.clone(),
                        created_at: app.now(),
                    };
                    created_subscription = Some(subscription.clone());
                    subscription
                }
            };
            Some(subscription.id)
        }
        _ if !slug.is_empty() => {
            return Err(bad(
                "subscription",
                "Only customers belong to a subscription: leave it empty for staff and admins",
            ));
        }
        _ => None,
    };
    let password_hash = password::hash(&new.password)
        .await
        .map_err(|e| bad("password", e.to_string()))?;
    let user = User {
        id: UserId::new(),
        display_name: if display_name.is_empty() {
            email.split('@').next().unwrap_or_default().to_string()
        } else {
            display_name.to_string()
        },
        email,
        password_hash,
        role,
        subscription_id,
        time_zone,
        disabled: false,
        session_epoch: 0,
        must_change_password: false,
        created_at: app.now(),
    };
    let mut detail = format!("{} {}", user.role, user.email);
    if let Some(subscription) = &created_subscription {
        detail.push_str(&format!(" in new subscription {}", subscription.slug));
    } else if !slug.is_empty() {
        detail.push_str(&format!(" in subscription {slug}"));
    }
    if matches!(operator, Operator::CommandLine) {
        detail.push_str(" (from the command line)");
    }
    let event = NewEvent::admin(operator.actor(), EventAction::UserCreate, detail, app.now());
    let mut commit = Commit::admin(AdminWrite::CreateUser(user.clone()), Some(event), app.now());
    if let Some(subscription) = created_subscription {
        commit
            .admin
            .insert(0, AdminWrite::CreateSubscription(subscription));
    }
    match app.commit(commit).await {
        Ok(_) => {}
        // Someone made the subscription a moment ago: join theirs.
        Err(StoreError::Duplicate(Unique::SubscriptionSlug)) => {
            return Box::pin(create_user_by(app, operator, new)).await;
        }
        Err(StoreError::Duplicate(Unique::Email)) => {
            return Err(bad(
                "email",
                format!("{} already exists: each person has one account", user.email),
            ));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(user = %user.email, role = %user.role, by = %operator.name(), "user created");
    Ok(user)
}

/// An admin's change to a person. `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<String>,
    /// Needed when someone becomes a customer.
    pub subscription: Option<String>,
    pub disabled: Option<bool>,
    pub time_zone: Option<String>,
    pub password: Option<String>,
}

/// Changes a person's role, state, zone or password. Disabling someone ends
/// their sessions (each request reloads the user) and revokes their tokens.
pub async fn update_user(
    app: &App,
    admin: &User,
    user_id: UserId,
    change: &UserChange,
) -> Result<User, DeskError> {
    require_admin(admin)?;
    let user = app.store.user(user_id).await?.ok_or(DeskError::NotFound)?;
    let mut update = UserUpdate::default();
    let mut said = Vec::new();
    if let Some(role) = &change.role {
        let role = parse_person_role(role)?;
        if role != user.role {
            if user.id == admin.id {
                return Err(bad("role", "You cannot change your own role"));
            }
            if role == Role::Customer {
                let slug = change
                    .subscription
                    .as_deref()
                    .unwrap_or_default()
                    .trim()
                    .to_lowercase();
                let subscription =
                    app.store
                        .subscription_by_slug(&slug)
                        .await?
                        .ok_or_else(|| {
                            bad(
                                "subscription",
                                "Name the existing subscription this customer belongs to",
                            )
                        })?;
                update.subscription_id = Some(Some(subscription.id));
                said.push(format!("role {role} in subscription {slug}"));
            } else {
                update.subscription_id = Some(None);
                said.push(format!("role {role}"));
            }
            update.role = Some(role);
        }
    }
    if let Some(disabled) = change.disabled
        && disabled != user.disabled
    {
        if disabled && user.id == admin.id {
            return Err(bad("disabled", "You cannot disable your own account"));
        }
        update.disabled = Some(disabled);
        said.push(if disabled { "disabled" } else { "enabled" }.to_string());
    }
    if let Some(zone) = &change.time_zone {
        let zone = parse_zone_name(zone)?;
        if zone != user.time_zone {
            said.push(format!("time zone {zone}"));
            update.time_zone = Some(zone);
        }
    }
    if let Some(new_password) = change.password.as_deref().filter(|p| !p.is_empty()) {
        update.password_hash = Some(new_password_hash(new_password, &user.email).await?);
        // The admin knows the password now: the person picks their own at
        // the next sign-in. An admin resetting their own needs no nudge.
        if user.id != admin.id {
            update.must_change_password = Some(true);
            said.push("password reset, to be changed at the next sign-in".to_string());
        } else {
            said.push("password reset".to_string());
        }
    }
    if said.is_empty() {
        return Ok(user);
    }
    let event = NewEvent::admin(
        admin.actor(),
        EventAction::UserUpdate,
        format!("{}: {}", user.email, said.join(", ")),
        app.now(),
    );
    app.store.update_user(user.id, &update, event).await?;
    // Whatever changed, the account's tokens are checked again.
    app.api_tokens.forget_user(user.id);
    tracing::info!(user = %user.email, change = %said.join(", "), by = %admin.email, "user updated");
    app.store.user(user.id).await?.ok_or(DeskError::NotFound)
}

/// The hash of a new password for `email`'s account, refused when weak.
async fn new_password_hash(new_password: &str, email: &str) -> Result<String, DeskError> {
    password::check_new(new_password, email).map_err(|weak| bad("password", weak.to_string()))?;
    password::hash(new_password)
        .await
        .map_err(|e| bad("password", e.to_string()))
}

/// A person chooses a new password: the current one proves it is them.
/// Their other sessions and their API tokens end; the caller signs this
/// session in again.
pub async fn change_password(
    app: &App,
    user: &User,
    current: &str,
    new_password: &str,
    repeated: &str,
) -> Result<User, DeskError> {
    if !password::verify(current, &user.password_hash).await {
        return Err(bad("current", "That is not your current password"));
    }
    if new_password != repeated {
        return Err(bad(
            "repeat",
            "The two new passwords differ; type the same one twice",
        ));
    }
    if new_password == current {
        return Err(bad(
            "password",
            "Choose a password other than the current one",
        ));
    }
    let update = UserUpdate {
        password_hash: Some(new_password_hash(new_password, &user.email).await?),
        must_change_password: Some(false),
        ..UserUpdate::default()
    };
    let event = NewEvent::admin(
        user.actor(),
        EventAction::UserUpdate,
        format!("{}: password changed by its owner", user.email),
        app.now(),
    );
    app.store.update_user(user.id, &update, event).await?;
    app.api_tokens.forget_user(user.id);
    tracing::info!(user = %user.email, "password changed");
    app.store.user(user.id).await?.ok_or(DeskError::NotFound)
}

/// The region a zone command means: the one named, or the only one there is.
pub async fn resolve_region(app: &App, region: Option<&str>) -> Result<String, DeskError> {
    let zones = app.store.zones().await?;
    let mut regions: Vec<&str> = zones.iter().map(|z| z.region.as_str()).collect();
    regions.dedup();
    match region.map(str::trim).filter(|r| !r.is_empty()) {
        Some(name) if regions.contains(&name) => Ok(name.to_string()),
        Some(name) => Err(bad("region", format!("There is no region {name:?}"))),
        None if regions.len() == 1 => Ok(regions[0].to_string()),
        None => Err(bad(
            "region",
            format!("Name the region: one of {}", regions.join(", ")),
        )),
    }
}

/// Takes a zone offline or brings it back; restores and validation see it at once.
/// The detail of an audit event: what, and why when a reason was given.
fn with_reason(what: String, reason: Option<&str>) -> Result<String, DeskError> {
    match reason.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(what),
        Some(reason) => {
            let reason = crate::domain::ticket::checked_text(
                "reason",
                reason,
                crate::domain::ticket::MAX_REASON_CHARS,
            )
            .map_err(DeskError::Refused)?;
            Ok(format!("{what}: {reason}"))
        }
    }
}

pub async fn set_zone(
    app: &App,
    admin: &User,
    region: &str,
    zone: Zone,
    online: bool,
    reason: Option<&str>,
) -> Result<(), DeskError> {
    require_admin(admin)?;
    let event = NewEvent::admin(
        admin.actor(),
        if online {
            EventAction::ZoneOnline
        } else {
            EventAction::ZoneOffline
        },
        with_reason(format!("{region}/{zone}"), reason)?,
        app.now(),
    );
    if !app
        .store
        .set_zone_online(region, zone, online, event)
        .await?
    {
        return Err(DeskError::NotFound);
    }
    tracing::info!(%region, %zone, online, by = %admin.email, "zone changed");
    Ok(())
}

/// A fault to arm in the simulated fleet.
#[derive(Debug, Clone)]
pub struct FaultRequest {
    pub kind: String,
    pub step: String,
    pub permanent: bool,
    pub times: i64,
    pub delay_ms: i64,
}

pub async fn add_fault(
    app: &App,
    admin: &User,
    request: &FaultRequest,
) -> Result<SandboxFault, DeskError> {
    require_admin(admin)?;
    let kind: FaultKind = request
        .kind
        .trim()
        .parse()
        .map_err(|e: String| bad("kind", e))?;
    let step: JobState = request
        .step
        .trim()
        .parse()
        .ok()
        .filter(|s: &JobState| s.is_build_step())
        .ok_or_else(|| {
            bad(
                "step",
                "Choose a restore step: provisioning, restoring_snapshot, replaying_log, \
                 verifying or finalizing",
            )
        })?;
    if !(1..=100).contains(&request.times) {
        return Err(bad("times", "A fault fires 1 to 100 times"));
    }
    if !(0..=3_600_000).contains(&request.delay_ms) {
        return Err(bad("delay_ms", "A delay is 0 to 3,600,000 milliseconds"));
    }
    let fault = SandboxFault {
        id: Uuid::new_v4(),
        kind,
        step,
        permanent: request.permanent && kind == FaultKind::FailStep,
        remaining: request.times,
        delay_ms: if kind == FaultKind::SlowStep {
            request.delay_ms
        } else {
            0
        },
        created_at: app.now(),
    };
    let detail = match kind {
        FaultKind::FailStep => format!(
            "{} fails{} {}×",
            step,
            if fault.permanent { " for good" } else { "" },
            fault.remaining
        ),
        FaultKind::SlowStep => format!(
            "{} slowed by {} ms {}×",
            step, fault.delay_ms, fault.remaining
        ),
    };
    let event = NewEvent::admin(admin.actor(), EventAction::FaultAdd, detail, app.now());
    app.store.sandbox_add_fault(&fault, event).await?;
    Ok(fault)
}

pub async fn clear_faults(app: &App, admin: &User) -> Result<(), DeskError> {
    require_admin(admin)?;
    let event = NewEvent::admin(
        admin.actor(),
        EventAction::FaultClear,
        "all faults cleared",
        app.now(),
    );
    app.store.sandbox_clear_faults(event).await?;
    Ok(())
}

/// Marks a cluster deleted: it stays restorable for the grace period.
pub async fn delete_cluster(
    app: &App,
    admin: &User,
    cluster_id: ClusterId,
    reason: Option<&str>,
) -> Result<(), DeskError> {
    require_admin(admin)?;
    let cluster = app
        .store
        .cluster(cluster_id, crate::store::Scope::Everything)
        .await?
        .ok_or(DeskError::NotFound)?;
    if cluster.deleted_at.is_some() {
        return Err(bad(
            "cluster",
            format!("{} is already deleted", cluster.name),
        ));
    }
    let now = app.now();
    let event = NewEvent::admin(
        admin.actor(),
        EventAction::ClusterDelete,
        with_reason(format!("{} ({})", cluster.name, cluster.id), reason)?,
        now,
    );
    if !app.store.delete_cluster(cluster.id, now, event).await? {
        return Err(bad(
            "cluster",
            format!("{} is already deleted", cluster.name),
        ));
    }
    tracing::info!(cluster = %cluster.name, by = %admin.email, "cluster deleted");
    Ok(())
}
