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

/// Files a request for `cluster` to `moment` as Alice and approves it as
/// Sam: the ticket's id.
async fn file_and_approve(
    fleet: &HostFleet,
    cluster: &str,
    moment: DateTime<Utc>,
    name: &str,
) -> String {
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
    id
}

/// The ticket and its job as staff see them now.
async fn ticket_and_job(fleet: &HostFleet, id: &str) -> (Value, Value) {
    let sam = fleet.api_as("sam@support.example").await;
    let (_, ticket) = sam.get(&format!("/api/v1/tickets/{id}")).await;
    let job = match ticket["job"]["id"].as_str() {
        Some(job_id) => sam.get(&format!("/api/v1/jobs/{job_id}")).await.1,
        None => Value::Null,
    };
    (ticket, job)
}

/// Waits for the ticket to end: the ticket and its job as staff see them.
async fn ended(fleet: &HostFleet, id: &str, limit: Duration) -> (Value, Value) {
    let sam = fleet.api_as("sam@support.example").await;
    fleet
        .wait_for(&format!("the restore of ticket {id}"), limit, async || {
            let (_, ticket) = sam.get(&format!("/api/v1/tickets/{id}")).await;
            matches!(ticket["state"].as_str(), Some("completed" | "failed")).then_some(())
        })
        .await;
    ticket_and_job(fleet, id).await
}

/// Files, approves and waits for the ticket to end.
async fn restore_to(
    fleet: &HostFleet,
    cluster: &str,
    moment: DateTime<Utc>,
    name: &str,
) -> (Value, Value) {
    let id = file_and_approve(fleet, cluster, moment, name).await;
    ended(fleet, &id, Duration::from_secs(240)).await
}

/// The restored cluster's host and port, as its customer sees them.
async fn where_is(fleet: &HostFleet, ticket: &Value) -> (String, u16) {
    let alice = fleet.api_as("alice@contoso.example").await;
    let copy = ticket["new_cluster_id"].as_str().unwrap();
    let (_, restored) = alice.get(&format!("/api/v1/clusters/{copy}")).await;
    let host = restored["connection"]["host"].as_str().unwrap();
    let name = host.split('.').next().unwrap().to_string();
    (
        name,
        restored["connection"]["port"].as_u64().unwrap() as u16,
    )
}

/// A fleet with the source registered and restorable: Ada's client and
/// the source cluster's id.
async fn registered(fleet: &HostFleet) -> (ApiClient, String) {
    let ada = fleet.api_as("ada@admin.example").await;
    let (status, registered) = fleet.register_source("orders", SOURCE_STANZA).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}:{}", fleet.logs());
    let orders = registered["id"].as_str().unwrap().to_string();
    has_a_window(fleet, &ada, &orders, ("src", SOURCE_PORT)).await;
    (ada, orders)
}

/// Registers the source on the admin clusters page as Ada, with `stanza`:
/// the answer's status and page.
async fn register_on_page(fleet: &HostFleet, name: &str, stanza: &str) -> (StatusCode, String) {
    let mut ada = fleet.browser_as("ada@admin.example").await;
    let page = ada.page("/admin/clusters").await;
    assert!(page.contains("Register an existing cluster"), "{page}");
    let data = fleet.source_dir().join("pg").display().to_string();
    let socket = fleet.source_dir().join("run").display().to_string();
    let conf = fleet.source_conf().display().to_string();
    let port = SOURCE_PORT.to_string();
    let response = ada
        .post(
            "/admin/clusters",
            &[
                ("name", name),
                ("subscription", "contoso"),
                ("resource_group", "rg-prod"),
                ("region", "westeurope"),
                ("host", "src"),
                ("port", &port),
                ("stanza", stanza),
                ("data_directory", &data),
                ("socket_directory", &socket),
                ("backrest_config", &conf),
                ("database", "postgres"),
                ("user", "postgres"),
                ("tier", "GeneralPurpose"),
                ("vcores", "2"),
                ("storage_gib", "32"),
                ("node_count", "1"),
                ("server_version", "15"),
                ("zone_az1", "yes"),
                ("zone_az2", "yes"),
                ("zone_az3", "yes"),
            ],
        )
        .await;
    let status = response.status();
    (status, response.text().await.unwrap_or_default())
}

/// Waits until every zone's repository holds a full backup of `stanza`:
/// then a moment written next is restorable from any one of them.
async fn backed_up_in_every_zone(fleet: &HostFleet, stanza: &str) {
    fleet
        .wait_for(
            &format!("a backup of {stanza} in every zone"),
            Duration::from_secs(120),
            async || {
                ["az1", "az2", "az3"]
                    .iter()
                    .all(|zone| {
                        let dir = fleet.root.join(zone).join("repo/backup").join(stanza);
                        std::fs::read_dir(dir).is_ok_and(|entries| {
                            entries.flatten().any(|e| {
                                let name = e.file_name().to_string_lossy().into_owned();
                                name.ends_with('F') && e.path().join("backup.manifest").is_file()
                            })
                        })
                    })
                    .then_some(())
            },
        )
        .await;
}

/// A fleet's source registered, backed up in every zone, with rows written
/// around a moment it is restorable to: Ada's client, the source's id and
/// the moment.
async fn in_every_zone(fleet: &HostFleet) -> (ApiClient, String, DateTime<Utc>) {
    let (ada, orders) = registered(fleet).await;
    backed_up_in_every_zone(fleet, SOURCE_STANZA).await;
    filler(fleet, 60_000);
    let t1 = write_around_a_moment(fleet, "src", SOURCE_PORT, "items", (BEFORE, AFTER));
    restorable_to(fleet, &ada, &orders, t1).await;
    step("restorable from every zone");
    (ada, orders, t1)
}

/// Some megabytes of rows, so that replaying them takes a moment.
fn filler(fleet: &HostFleet, rows: i64) {
    fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        &format!(
            "CREATE TABLE IF NOT EXISTS filler (id bigint, pad text); \
             INSERT INTO filler SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, {rows}) g"
        ),
    );
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

    // The first copy deleted: its server stops on its host at once, and
    // once its 7-day grace is over (moved back here in the desk's
    // database) its backups are removed from every zone.
    assert_eq!(
        ada.delete(&format!("/api/v1/clusters/{copy}")).await,
        StatusCode::NO_CONTENT
    );
    let stanza_dirs =
        ["az1", "az2", "az3"].map(|z| fleet.root.join(z).join("repo/backup").join(&copy));
    assert!(
        stanza_dirs.iter().all(|d| d.is_dir()),
        "the copy was backed up in every zone"
    );
    fleet
        .wait_for(
            "the deleted copy's server stopped",
            Duration::from_secs(60),
            async || {
                let up = std::process::Command::new(format!(
                    "{}/pg_isready",
                    "/usr/lib/postgresql/15/bin"
                ))
                .args([
                    "-h",
                    &fleet.lan.address(&host).to_string(),
                    "-p",
                    &port.to_string(),
                    "-t",
                    "1",
                ])
                .status()
                .is_ok_and(|s| s.success());
                (!up).then_some(())
            },
        )
        .await;
    fleet.psql(
        "desk",
        5432,
        "desk",
        &format!(
            "UPDATE clusters SET deleted_at = deleted_at - interval '8 days' WHERE id = '{copy}'"
        ),
    );
    fleet
        .wait_for(
            "the deleted copy's backups removed",
            Duration::from_secs(120),
            async || stanza_dirs.iter().all(|d| !d.exists()).then_some(()),
        )
        .await;
    step("a deleted copy's backups removed after its grace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zone_lost_before_or_during_a_restore_is_routed_around() {
    let fleet = HostFleet::start(FleetPlan::default()).await;
    let (_, orders, t1) = in_every_zone(&fleet).await;

    // az1's cable pulled before the restore: az2 or az3 serves it.
    fleet.lan.link("az1", false);
    let mut ada_page = fleet.browser_as("ada@admin.example").await;
    let zones = ada_page.page("/admin/zones").await;
    let row = |zone: &str| {
        let at = zones
            .find(&format!("<td class=\"mono\">{zone}</td>"))
            .unwrap();
        zones[at..].split("</tr>").next().unwrap().to_string()
    };
    assert!(row("az1").contains("not answering"), "{}", row("az1"));
    assert!(row("az2").contains(">answering<"), "{}", row("az2"));
    let (ticket, job) = restore_to(&fleet, &orders, t1, "orders-no-az1").await;
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    assert!(matches!(job["zone"].as_str(), Some("az2" | "az3")), "{job}");
    let (host, port) = where_is(&fleet, &ticket).await;
    assert_eq!(count(&fleet, &host, port, "items", "before"), BEFORE);
    assert_eq!(count(&fleet, &host, port, "items", "after"), 0);
    step("restored without az1");

    // The zone serving a restore lost while it runs (az2, the first
    // readable one): the restore goes on from the zone left.
    let id = file_and_approve(&fleet, &orders, t1, "orders-zone-lost").await;
    let sam = fleet.api_as("sam@support.example").await;
    let serving = fleet
        .wait_for(
            "the restore reading a zone",
            Duration::from_secs(120),
            async || {
                let (_, job) = ticket_and_job(&fleet, &id).await;
                let busy = matches!(
                    job["state"].as_str(),
                    Some("restoring_snapshot" | "replaying_log")
                );
                job["zone"].as_str().filter(|_| busy).map(str::to_string)
            },
        )
        .await;
    fleet.lan.link(&serving, false);
    step(&format!("{serving} cut"));
    let (ticket, job) = ended(&fleet, &id, Duration::from_secs(200)).await;
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    // A snapshot laid down already stays; what is still to read comes
    // from the zone left.
    let left = if serving == "az2" { "az3" } else { "az2" };
    assert!(job["zone"] == serving || job["zone"] == left, "{job}");
    let (host, port) = where_is(&fleet, &ticket).await;
    assert_eq!(count(&fleet, &host, port, "items", "before"), BEFORE);
    assert_eq!(count(&fleet, &host, port, "items", "after"), 0);
    let (_, events) = sam.get(&format!("/api/v1/tickets/{id}/events")).await;
    let failed: Vec<&Value> = events
        .as_array()
        .or(events["events"].as_array())
        .into_iter()
        .flatten()
        .filter(|e| e["action"] == "job_step_failed")
        .collect();
    assert!(
        failed
            .iter()
            .any(|e| e.to_string().contains(&format!("zone {serving}"))),
        "the lost zone shows as a failed attempt naming it: {events}"
    );
    step("restored after the serving zone was lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lossy_zone_still_restores_and_no_zone_fails_clearly() {
    let fleet = HostFleet::start(FleetPlan::default()).await;
    let (ada, orders, t1) = in_every_zone(&fleet).await;

    // A slow, lossy az3 the only zone that answers: the restore completes,
    // its progress moving. The kernel here has no netem: the loss is
    // nftables dropping 15 % of what az3 sends, the delay a proxy holding
    // back everything az3's TLS server answers by 50 ms.
    fleet.lan.link("az1", false);
    fleet.lan.link("az2", false);
    fleet.lan.loss("az3", 15);
    let slow = fleet
        .lan
        .delay_proxy("az3", 8433, 8432, std::time::Duration::from_millis(50));
    fleet.lan.redirect("az3", 8432, Some(slow.port()));
    let id = file_and_approve(&fleet, &orders, t1, "orders-lossy").await;
    let mut seen = std::collections::BTreeSet::new();
    fleet
        .wait_for(
            "the restore over a lossy zone",
            Duration::from_secs(150),
            async || {
                let (ticket, job) = ticket_and_job(&fleet, &id).await;
                if let Some(p) = job["progress"].as_i64() {
                    seen.insert(p);
                }
                matches!(ticket["state"].as_str(), Some("completed" | "failed")).then_some(())
            },
        )
        .await;
    let (ticket, job) = ticket_and_job(&fleet, &id).await;
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    assert_eq!(job["zone"], "az3");
    assert!(seen.len() >= 3, "progress kept moving: {seen:?}");
    step("restored over a lossy az3");

    // Every zone gone while a restore is under way: it fails with its
    // reason, and the customer is told.
    let (_, dropped) = fleet.lan.loss_counts("az3");
    assert!(dropped > 0, "az3 lost packets on the way");
    fleet.lan.loss("az3", 0);
    assert!(
        slow.relayed() > 1_000_000,
        "the restore came through the slow link: {} bytes",
        slow.relayed()
    );
    fleet.lan.redirect("az3", 8432, None);
    drop(slow);
    fleet.lan.link("az1", true);
    fleet.lan.link("az2", true);
    let id = file_and_approve(&fleet, &orders, t1, "orders-no-zone").await;
    for zone in ["az1", "az2", "az3"] {
        fleet.lan.link(zone, false);
    }
    let (ticket, job) = ended(&fleet, &id, Duration::from_secs(150)).await;
    assert_eq!(ticket["state"], "failed", "{ticket}\n{job}");
    let reason = job["last_error"].as_str().unwrap_or_default().to_string();
    assert!(
        // What the zones held when last read decides the words: with
        // nothing remembered, no zone answers at all.
        reason.contains("az3")
            && (reason.contains("offline") || reason.contains("no zone answers")),
        "the reason names the zones: {reason}"
    );
    let (_, zones) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
    assert!(
        zones["restorable_now"].is_null(),
        "no zone answers: {zones}"
    );
    let subject = format!(
        "Subject: [{}] Restore failed",
        ticket["number"].as_str().unwrap()
    );
    let told = std::fs::read_dir(fleet.root.join("mail"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .any(|m| m.contains("To: alice@contoso.example") && m.contains(&subject));
    assert!(told, "Alice is told her restore failed");
    step("failed with every zone gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_restore_host_hands_over_and_a_small_one_starts_nothing() {
    let mut fleet = HostFleet::start(FleetPlan {
        restore_hosts: &["r1", "r2", "tiny"],
        small_hosts: &[("tiny", 64)],
        idle: &["r2", "tiny"],
        ..FleetPlan::default()
    })
    .await;
    // Registered on the admin clusters page: a stanza the zones do not
    // know is refused beside its field, with nothing stored.
    let ada = fleet.api_as("ada@admin.example").await;
    let (status, page) = register_on_page(&fleet, "orders", "nosuch").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{page}");
    assert!(
        page.contains("id=\"r-stanza-error\""),
        "the refusal is beside the stanza: {page}"
    );
    assert!(page.contains("value=\"nosuch\""), "what was typed is kept");
    let (_, clusters) = ada.get("/api/v1/clusters").await;
    assert!(
        !clusters.to_string().contains("\"orders\""),
        "nothing stored: {clusters}"
    );
    let (status, page) = register_on_page(&fleet, "orders", SOURCE_STANZA).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let (_, clusters) = ada.get("/api/v1/clusters").await;
    let orders = clusters
        .as_array()
        .or(clusters["items"].as_array())
        .and_then(|all| all.iter().find(|c| c["name"] == "orders"))
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("orders is registered: {clusters}"))
        .to_string();
    has_a_window(&fleet, &ada, &orders, ("src", SOURCE_PORT)).await;
    filler(&fleet, 60_000);
    let t1 = write_around_a_moment(&fleet, "src", SOURCE_PORT, "items", (BEFORE, AFTER));
    restorable_to(&fleet, &ada, &orders, t1).await;

    // r1 takes the restore; slowed by loss on every zone, it is lost
    // half-way: its worker killed and its cable pulled.
    for zone in ["az1", "az2", "az3"] {
        fleet.lan.loss(zone, 15);
    }
    let id = file_and_approve(&fleet, &orders, t1, "orders-moved").await;
    fleet
        .wait_for(
            "the restore under way on r1",
            Duration::from_secs(120),
            async || {
                let (_, job) = ticket_and_job(&fleet, &id).await;
                let busy = matches!(
                    job["state"].as_str(),
                    Some("restoring_snapshot" | "replaying_log")
                );
                (busy && job["host"] == "r1").then_some(())
            },
        )
        .await;
    fleet.kill("r1");
    fleet.lan.link("r1", false);
    step("r1 lost");
    fleet.start_restore_host("r2");
    for zone in ["az1", "az2", "az3"] {
        fleet.lan.loss(zone, 0);
    }
    let (ticket, job) = ended(&fleet, &id, Duration::from_secs(300)).await;
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    assert_eq!(job["host"], "r2");
    let (host, port) = where_is(&fleet, &ticket).await;
    assert_eq!(host, "r2");
    assert_eq!(count(&fleet, &host, port, "items", "before"), BEFORE);
    assert_eq!(count(&fleet, &host, port, "items", "after"), 0);
    let sam = fleet.api_as("sam@support.example").await;
    let (_, events) = sam.get(&format!("/api/v1/tickets/{id}/events")).await;
    assert!(events.to_string().contains("job_rehost"), "{events}");
    step("finished on r2");

    // r1 back: what the lost run left there is removed.
    let r1_restores = fleet.root.join("r1").join("restores");
    let left = |dir: &std::path::Path| std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    assert_eq!(left(&r1_restores), 1, "the lost run left its folder on r1");
    fleet.lan.link("r1", true);
    fleet.start_restore_host("r1");
    fleet
        .wait_for(
            "r1's leftovers removed",
            Duration::from_secs(60),
            async || (left(&r1_restores) == 0).then_some(()),
        )
        .await;
    assert!(
        fleet
            .log("r1")
            .contains("removing a restore this host no longer holds")
    );
    step("r1 cleaned up");

    // A host whose data root is a 64 MiB tmpfs never starts a restore: the
    // job waits, with its reason on the staff ticket page, then runs on a
    // host with room.
    fleet.kill("r1");
    fleet.kill("r2");
    fleet.start_restore_host("tiny");
    let id = file_and_approve(&fleet, &orders, t1, "orders-roomy").await;
    fleet
        .wait_for(
            "the restore waiting for room",
            Duration::from_secs(120),
            async || {
                let (_, job) = ticket_and_job(&fleet, &id).await;
                (job["state"] == "queued"
                    && job["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("tiny has")))
                .then_some(())
            },
        )
        .await;
    let tiny_restores = fleet.root.join("tiny").join("restores");
    assert_eq!(left(&tiny_restores), 0, "nothing was started on tiny");
    // The web desk trusts what it read for up to READ_CACHE_MS.
    let mut sam_page = fleet.browser_as("sam@support.example").await;
    let page = fleet
        .wait_for(
            "the waiting reason on the staff page",
            Duration::from_secs(10),
            async || {
                let page = sam_page.page(&format!("/staff/tickets/{id}")).await;
                page.contains("<dt>Waiting</dt>").then_some(page)
            },
        )
        .await;
    assert!(
        page.contains("tiny has 64.0 MB free"),
        "the reason names the host: {page}"
    );
    fleet.start_restore_host("r2");
    let (ticket, job) = ended(&fleet, &id, Duration::from_secs(240)).await;
    assert_eq!(
        ticket["state"],
        "completed",
        "{ticket}\n{job}:{}",
        fleet.logs()
    );
    assert_eq!(job["host"], "r2");
    assert_eq!(left(&tiny_restores), 0);
    step("ran on r2 instead of tiny");
}
