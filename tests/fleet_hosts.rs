//! The real fleet across hosts: every host a network namespace of its own
//! (the desk and its PostgreSQL, a source, three zone hosts, two restore
//! hosts), zones as pgBackRest repository hosts over TLS, a cluster made
//! outside the desk registered through the API, restored on a restore host
//! exactly to a moment, and the restored cluster backed up and restored in
//! turn; zone faults as network faults; a restore host lost mid-restore;
//! a restore host too small for the restore.

mod common;

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::fleet_hosts::{ApiClient, FleetPlan, HostFleet, SOURCE_PORT, SOURCE_STANZA};

/// Says how far the test got, for a log that shows where time goes.
fn step(what: &str) {
    eprintln!("{} {what}", Utc::now().format("%H:%M:%S%.3f"));
}

/// Rows written before the moment a restore goes back to, and after.
const BEFORE: i64 = 100;
const AFTER: i64 = 50;

/// Writes `before` rows, takes the moment, writes `after` more, and waits
/// until the log up to them is archived in every zone: the moment.
fn write_around_a_moment(
    fleet: &HostFleet,
    host: &str,
    port: u16,
    table: &str,
    (before, after): (i64, i64),
) -> DateTime<Utc> {
    fleet.psql(
        host,
        port,
        "postgres",
        &format!(
            "CREATE TABLE IF NOT EXISTS {table} (id bigserial PRIMARY KEY, phase text NOT NULL)"
        ),
    );
    fleet.psql(
        host,
        port,
        "postgres",
        &format!("INSERT INTO {table} (phase) SELECT 'before' FROM generate_series(1, {before})"),
    );
    let moment = fleet.psql(
        host,
        port,
        "postgres",
        "SELECT to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')",
    );
    std::thread::sleep(Duration::from_millis(1100));
    fleet.psql(
        host,
        port,
        "postgres",
        &format!("INSERT INTO {table} (phase) SELECT 'after' FROM generate_series(1, {after})"),
    );
    let segment = fleet.psql(
        host,
        port,
        "postgres",
        "SELECT pg_walfile_name(pg_switch_wal())",
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let archived = fleet.psql(
            host,
            port,
            "postgres",
            "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver",
        );
        if archived.as_str() >= segment.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{segment} was not archived from {host} (last {archived}):{}",
            fleet.logs()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    moment.parse().expect("a moment")
}

fn count(fleet: &HostFleet, host: &str, port: u16, table: &str, phase: &str) -> i64 {
    fleet
        .psql(
            host,
            port,
            "postgres",
            &format!("SELECT count(*) FROM {table} WHERE phase = '{phase}'"),
        )
        .parse()
        .unwrap()
}

/// Waits until `cluster` has a window at all: its first backups are done
/// and a commit after them is archived (the desk never writes to a cluster
/// it did not make, so an idle one's window ends at its last commit).
async fn has_a_window(
    fleet: &HostFleet,
    api: &ApiClient,
    cluster: &str,
    (host, port): (&str, u16),
) {
    fleet.psql(
        host,
        port,
        "postgres",
        "CREATE TABLE IF NOT EXISTS ticks (at timestamptz)",
    );
    let mut polls = 0;
    fleet
        .wait_for(
            &format!("{cluster}'s first backups"),
            Duration::from_secs(180),
            async || {
                polls += 1;
                if polls % 12 == 1 {
                    fleet.psql(
                        host,
                        port,
                        "postgres",
                        "INSERT INTO ticks VALUES (now()); SELECT pg_switch_wal()",
                    );
                }
                let (_, body) = api.get(&format!("/api/v1/clusters/{cluster}")).await;
                body["restorable_now"]["earliest"].as_str().map(|_| ())
            },
        )
        .await;
}

/// Waits until the desk says `cluster` is restorable up to `moment`.
async fn restorable_to(fleet: &HostFleet, api: &ApiClient, cluster: &str, moment: DateTime<Utc>) {
    fleet
        .wait_for(
            &format!("{cluster} restorable to {moment}"),
            Duration::from_secs(180),
            async || {
                let (status, body) = api.get(&format!("/api/v1/clusters/{cluster}")).await;
                let latest = body["restorable_now"]["latest"]
                    .as_str()
                    .and_then(|t| t.parse::<DateTime<Utc>>().ok());
                (status == StatusCode::OK && latest.is_some_and(|l| l >= moment)).then_some(())
            },
        )
        .await;
}

/// Files a request for `cluster` to `moment` as Alice, approves it as Sam,
/// and waits for the ticket to end: the ticket and its job as staff see them.
async fn restore_to(
    fleet: &HostFleet,
    cluster: &str,
    moment: DateTime<Utc>,
    name: &str,
) -> (Value, Value) {
    let alice = fleet.api_as("alice@contoso.example").await;
    let sam = fleet.api_as("sam@support.example").await;
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": cluster, "target_time": moment.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                   "new_cluster_name": name, "severity": "A", "description": "back to the moment"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    for action in ["claim", "approve"] {
        let (status, answer) = sam
            .post(&format!("/api/v1/tickets/{id}/{action}"), json!({}))
            .await;
        assert_eq!(status, StatusCode::OK, "{action}: {answer}");
    }
    let ended = fleet
        .wait_for(
            &format!("the restore of ticket {id}"),
            Duration::from_secs(300),
            async || {
                let (_, ticket) = sam.get(&format!("/api/v1/tickets/{id}")).await;
                matches!(ticket["state"].as_str(), Some("completed" | "failed")).then_some(ticket)
            },
        )
        .await;
    let job_id = ended["job"]["id"].as_str().unwrap().to_string();
    let (_, job) = sam.get(&format!("/api/v1/jobs/{job_id}")).await;
    (ended, job)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registered_cluster_restores_on_a_restore_host_and_its_copy_in_turn() {
    let fleet = HostFleet::start(FleetPlan::default()).await;
    let ada = fleet.api_as("ada@admin.example").await;
    step("fleet up");

    // A stanza the zones do not know: refused, nothing stored.
    let (status, refused) = fleet.register_source("orders-typo", "no-such-stanza").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert_eq!(refused["error"]["field"], "stanza");
    let message = refused["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no-such-stanza is unknown to az1, az2, az3"),
        "{message}"
    );
    let (_, clusters) = ada.get("/api/v1/clusters").await;
    assert_eq!(clusters.as_array().unwrap().len(), 0, "{clusters}");

    let (status, registered) = fleet.register_source("orders", SOURCE_STANZA).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}:{}", fleet.logs());
    let orders = registered["id"].as_str().unwrap().to_string();
    has_a_window(&fleet, &ada, &orders, ("src", SOURCE_PORT)).await;
    step("source registered");

    let t1 = write_around_a_moment(&fleet, "src", SOURCE_PORT, "items", (BEFORE, AFTER));
    restorable_to(&fleet, &ada, &orders, t1).await;
    step("source restorable to t1");
    let source_before = fleet.psql("src", SOURCE_PORT, "postgres", "SELECT count(*) FROM items");

    let (ticket, job) = restore_to(&fleet, &orders, t1, "orders-t1").await;
    step("first restore ended");
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    let host = job["host"].as_str().unwrap().to_string();
    assert!(
        host == "r1" || host == "r2",
        "restored on a restore host, not {host}"
    );
    let copy = ticket["new_cluster_id"].as_str().unwrap().to_string();
    // Where to connect is the customer's to see.
    let alice = fleet.api_as("alice@contoso.example").await;
    let (_, restored) = alice.get(&format!("/api/v1/clusters/{copy}")).await;
    let connection = &restored["connection"];
    assert_eq!(connection["host"], fleet.lan.dns(&host), "{restored}");
    let port = connection["port"].as_u64().unwrap() as u16;
    assert_eq!(count(&fleet, &host, port, "items", "before"), BEFORE);
    assert_eq!(count(&fleet, &host, port, "items", "after"), 0);
    // The source is untouched, and still takes writes.
    assert_eq!(
        fleet.psql("src", SOURCE_PORT, "postgres", "SELECT count(*) FROM items"),
        source_before
    );
    fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "INSERT INTO items (phase) VALUES ('later')",
    );

    // Handed over, the copy is a cluster of its own: its log and backups
    // go to the zones under its own stanza, its window appears, and it is
    // restored in turn.
    has_a_window(&fleet, &ada, &copy, (&host, port)).await;
    step("copy has its window");
    let t2 = write_around_a_moment(&fleet, &host, port, "notes", (7, 3));
    restorable_to(&fleet, &ada, &copy, t2).await;
    step("copy restorable to t2");
    let (ticket, job) = restore_to(&fleet, &copy, t2, "orders-t1-t2").await;
    step("second restore ended");
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    let second = ticket["new_cluster_id"].as_str().unwrap().to_string();
    let (_, twice) = alice.get(&format!("/api/v1/clusters/{second}")).await;
    let host2 = job["host"].as_str().unwrap().to_string();
    let port2 = twice["connection"]["port"].as_u64().unwrap() as u16;
    assert_eq!(count(&fleet, &host2, port2, "notes", "before"), 7);
    assert_eq!(count(&fleet, &host2, port2, "notes", "after"), 0);
    assert_eq!(count(&fleet, &host2, port2, "items", "before"), BEFORE);
}
