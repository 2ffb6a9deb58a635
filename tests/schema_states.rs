//! The database checks states too: the `CHECK (… IN (…))` lists in both
//! migration folders must list exactly the states of the Rust enums.

use std::collections::BTreeSet;

use restore_desk::domain::actor::Role;
use restore_desk::domain::restore_job::JobState;
use restore_desk::domain::sla::Severity;
use restore_desk::domain::ticket::TicketState;
use restore_desk::store::OutboxStatus;

/// The values of `CHECK (<column> IN (…))` for `column` in `table`, as the
/// last migration that states them has it: a `CREATE TABLE` (SQLite
/// rebuilds a table to change a check) or an `ALTER TABLE … ADD CONSTRAINT`.
fn check_list(sql: &str, table: &str, column: &str) -> BTreeSet<String> {
    let needle = format!("CHECK ({column} IN (");
    let mut found = None;
    for opening in [
        format!("CREATE TABLE {table} ("),
        format!("CREATE TABLE {table}_new ("),
        format!("ALTER TABLE {table}\n"),
        format!("ALTER TABLE {table} "),
    ] {
        for (start, _) in sql.match_indices(&opening) {
            let body = &sql[start..];
            let end = if opening.starts_with("CREATE") {
                body.find("\n);").expect("end of table")
            } else {
                body.find(';').expect("end of statement")
            };
            if let Some(at) = body[..end].find(&needle) {
                let at = start + at + needle.len();
                if found.is_none_or(|f| at > f) {
                    found = Some(at);
                }
            }
        }
    }
    let at = found.unwrap_or_else(|| panic!("no check list for {table}.{column}"));
    let list = &sql[at..];
    let list = &list[..list.find(')').unwrap()];
    list.split(',')
        .map(|v| v.trim().trim_matches('\'').to_string())
        .collect()
}

fn set<I: IntoIterator<Item = &'static str>>(values: I) -> BTreeSet<String> {
    values.into_iter().map(str::to_string).collect()
}

#[test]
fn check_lists_match_the_rust_enums_in_both_databases() {
    for folder in ["sqlite", "postgres"] {
        let path = format!("{}/migrations/{folder}", env!("CARGO_MANIFEST_DIR"));
        let mut sql = String::new();
        let mut files: Vec<_> = std::fs::read_dir(&path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            sql.push_str(&std::fs::read_to_string(file).unwrap());
        }
        let cases = [
            (
                "tickets",
                "state",
                set(TicketState::ALL.map(TicketState::as_str)),
            ),
            (
                "restore_jobs",
                "state",
                set(JobState::ALL.map(JobState::as_str)),
            ),
            (
                "tickets",
                "severity",
                set(Severity::ALL.map(Severity::as_str)),
            ),
            ("users", "role", set(Role::PEOPLE.map(Role::as_str))),
            ("messages", "author_role", set(Role::ALL.map(Role::as_str))),
            ("events", "actor_role", set(Role::ALL.map(Role::as_str))),
            (
                "outbox",
                "status",
                set(OutboxStatus::ALL.map(OutboxStatus::as_str)),
            ),
            (
                "sandbox_faults",
                "step",
                set(JobState::STEPS.map(JobState::as_str)),
            ),
        ];
        for (table, column, expected) in cases {
            assert_eq!(
                check_list(&sql, table, column),
                expected,
                "{folder}: {table}.{column}"
            );
        }
    }
}
