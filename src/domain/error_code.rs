//! Every `code` an error can carry: the stable names API clients match
//! on, one list for the whole desk. Each refusal type names its own code;
//! the OpenAPI document lists exactly these.

use super::restore_job::JobRefusal;
use super::ticket::Refusal;
use super::validation::ValidationCode;

string_enum! {
    /// A stable, machine-readable reason.
    pub enum ErrorCode ("error code") {
        // The rules of SPEC §4, as `ValidationCode` names them (422).
        InvalidTimestamp = "invalid_timestamp",
        NonexistentLocalTime = "nonexistent_local_time",
        AmbiguousLocalTime = "ambiguous_local_time",
        TargetInFuture = "target_in_future",
        TargetOutsideRetention = "target_outside_retention",
        TargetBeforeEarliestRestorePoint = "target_before_earliest_restore_point",
        NoBackupInOnlineZone = "no_backup_in_online_zone",
        InvalidClusterName = "invalid_cluster_name",
        ClusterNameTaken = "cluster_name_taken",
        ClusterNotFound = "cluster_not_found",
        UnknownTransaction = "unknown_transaction",
        TargetNotLater = "target_not_later",
        TargetNotEarlier = "target_not_earlier",
        /// A field, query parameter or body the desk cannot read (422).
        InvalidInput = "invalid_input",
        PayloadTooLarge = "payload_too_large",
        NotFound = "not_found",
        MethodNotAllowed = "method_not_allowed",
        /// No bearer token, or one that is unknown, expired or revoked (401).
        Unauthenticated = "unauthenticated",
        InvalidCredentials = "invalid_credentials",
        /// An admin reset the password: the person changes it first (403).
        PasswordChangeRequired = "password_change_required",
        Forbidden = "forbidden",
        /// A page form without its token (pages only).
        Csrf = "csrf",
        RateLimited = "rate_limited",
        // Commands refused as things stand (409).
        Conflict = "conflict",
        WrongState = "wrong_state",
        NotAssignee = "not_assignee",
        AlreadyAssigned = "already_assigned",
        TargetNotChecked = "target_not_checked",
        TooLateToCancel = "too_late_to_cancel",
        AlreadyWarned = "already_warned",
        AlreadyRestored = "already_restored",
        VerdictGiven = "verdict_given",
        // The desk cannot serve right now (503), or failed (500).
        DatabaseUnavailable = "database_unavailable",
        StorageFull = "storage_full",
        FleetUnavailable = "fleet_unavailable",
        Internal = "internal",
    }
}

impl From<ValidationCode> for ErrorCode {
    fn from(code: ValidationCode) -> ErrorCode {
        // Each validation code is an error code of the same name.
        code.as_str()
            .parse()
            .expect("every validation code is an error code")
    }
}

impl Refusal {
    /// The code a refusal of a ticket command answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            Refusal::Forbidden => ErrorCode::Forbidden,
            Refusal::WrongState(_) => ErrorCode::WrongState,
            Refusal::NotAssignee => ErrorCode::NotAssignee,
            Refusal::AlreadyAssigned => ErrorCode::AlreadyAssigned,
            Refusal::BadText { .. } => ErrorCode::InvalidInput,
            Refusal::Invalid(error) | Refusal::WrongDirection(error) => error.code.into(),
            Refusal::TargetNotChecked => ErrorCode::TargetNotChecked,
            Refusal::TooLateToCancel => ErrorCode::TooLateToCancel,
            Refusal::AlreadyWarned => ErrorCode::AlreadyWarned,
            Refusal::AlreadyRestored => ErrorCode::AlreadyRestored,
        }
    }
}

impl JobRefusal {
    /// The code a refusal of a job command answers with.
    pub fn code(&self) -> ErrorCode {
        match self {
            JobRefusal::Forbidden => ErrorCode::Forbidden,
            JobRefusal::WrongState(_) => ErrorCode::WrongState,
        }
    }
}

impl utoipa::PartialSchema for ErrorCode {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("A stable, machine-readable reason."))
            .enum_values(Some(ErrorCode::ALL.map(ErrorCode::as_str)))
            .into()
    }
}

impl utoipa::ToSchema for ErrorCode {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_validation_code_is_an_error_code() {
        for code in ValidationCode::ALL {
            assert_eq!(ErrorCode::from(code).as_str(), code.as_str());
        }
    }
}
