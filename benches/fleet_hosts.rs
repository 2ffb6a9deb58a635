//! The fleet across hosts, measured: a cluster of some 2 GB (pgbench scale
//! 150) with over 500 MB of log to replay past its backup, restored through
//! the desk onto a restore host, against the same `pgbackrest restore` +
//! `pg_ctl start` + wait for promotion run by hand on the same host from the
//! same zone, backup set and target, in the same run; and the restore's
//! MB/s beside the MB/s of `tar` copying the same data directory from the
//! source host to the restore host (the ceiling of this network).
//!
//!     bash benches/run hosts          # or: cargo bench --bench fleet_hosts
//!     QUICK=1 bash benches/run hosts  # scale 15, 50 MB of log
//!
//! Every host is a network namespace of its own, as in tests/fleet_hosts.rs;
//! it runs as root. Not part of CI: a run takes some ten minutes.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::StatusCode;
use serde_json::{Value, json};

use common::fleet_hosts::{FleetPlan, HostFleet, SOURCE_PORT, SOURCE_STANZA};

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
/// The port of the restore done by hand on the restore host.
const HAND_PORT: u16 = 5433;

fn quick() -> bool {
    std::env::var("QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}

fn run(mut command: Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn step(what: &str) {
    eprintln!("{} {what}", Utc::now().format("%H:%M:%S"));
}

/// Bytes under `dir`, as `du` counts them.
fn bytes_under(dir: &Path) -> f64 {
    let out = run(
        {
            let mut c = Command::new("du");
            c.args(["-sb", &dir.display().to_string()]);
            c
        },
        "du",
    );
    out.split_whitespace().next().unwrap().parse().unwrap()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench());
}

async fn bench() {
    let (scale, log_mb) = if quick() { (15, 50) } else { (150, 500) };
    let fleet = HostFleet::start(FleetPlan {
        restore_hosts: &["r1"],
        ..FleetPlan::default()
    })
    .await;
    step("fleet up");
    let (status, registered) = fleet.register_source("orders", SOURCE_STANZA).await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let orders = registered["id"].as_str().unwrap().to_string();
    // The zones' own first backups, so each zone host knows the stanza.
    fleet
        .wait_for(
            "a first backup in every zone",
            Duration::from_secs(300),
            async || {
                ["az1", "az2", "az3"]
                    .iter()
                    .all(|zone| {
                        let dir = fleet
                            .root
                            .join(zone)
                            .join("repo/backup")
                            .join(SOURCE_STANZA);
                        std::fs::read_dir(dir).is_ok_and(|entries| {
                            entries
                                .flatten()
                                .any(|e| e.file_name().to_string_lossy().ends_with('F'))
                        })
                    })
                    .then_some(())
            },
        )
        .await;

    // The data, and a full backup of it in az1 taken on az1 as its zone
    // host would, so that restore reads it.
    let mut pgbench = fleet
        .lan
        .as_user("src", "postgres", &format!("{PG_BIN}/pgbench"));
    pgbench.args([
        "-h",
        &fleet.lan.address("src").to_string(),
        "-p",
        &SOURCE_PORT.to_string(),
        "-i",
        "-q",
        "-s",
        &scale.to_string(),
        "postgres",
    ]);
    run(pgbench, "pgbench -i");
    let accounts = fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "SELECT count(*) FROM pgbench_accounts",
    );
    assert_eq!(accounts, (scale * 100_000).to_string());
    let size = fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "SELECT pg_size_pretty(pg_database_size('postgres'))",
    );
    step(&format!("pgbench scale {scale} loaded: {size}"));
    let zone_conf = fleet.root.join("az1").join("host").join("pgbackrest.conf");
    let mut backup = fleet.lan.as_user("az1", "postgres", "pgbackrest");
    backup
        .arg(format!("--config={}", zone_conf.display()))
        .arg(format!("--stanza={SOURCE_STANZA}"))
        .args(["--repo=1", "--type=full", "backup"]);
    run(backup, "a full backup in az1");
    step("backed up in az1");

    // Log past the backup: updates in batches until enough is written.
    let start_lsn = fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "SELECT pg_current_wal_lsn()",
    );
    let rows = scale * 100_000;
    let mut from = 1;
    loop {
        let written: f64 = fleet
            .psql(
                "src",
                SOURCE_PORT,
                "postgres",
                &format!("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{start_lsn}')"),
            )
            .parse()
            .unwrap();
        if written >= f64::from(log_mb) * 1_048_576.0 {
            break;
        }
        let to = (from + rows / 10).min(rows);
        fleet.psql(
            "src",
            SOURCE_PORT,
            "postgres",
            &format!(
                "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid BETWEEN {from} AND {to}"
            ),
        );
        from = if to >= rows { 1 } else { to + 1 };
    }
    fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "CREATE TABLE marks (phase text)",
    );
    fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "INSERT INTO marks VALUES ('before')",
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let target = Utc::now();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fleet.psql(
        "src",
        SOURCE_PORT,
        "postgres",
        "INSERT INTO marks VALUES ('after')",
    );
    fleet.psql("src", SOURCE_PORT, "postgres", "SELECT pg_switch_wal()");
    let ada = fleet.api_as("ada@admin.example").await;
    fleet
        .wait_for(
            "the target restorable",
            Duration::from_secs(900),
            async || {
                let (_, body) = ada.get(&format!("/api/v1/clusters/{orders}")).await;
                body["restorable_now"]["latest"]
                    .as_str()
                    .and_then(|l| DateTime::parse_from_rfc3339(l).ok())
                    .is_some_and(|l| l >= target)
                    .then_some(())
            },
        )
        .await;
    step(&format!("{log_mb} MB of log archived past the backup"));

    // Through the desk: from approval until the ticket is completed.
    let alice = fleet.api_as("alice@contoso.example").await;
    let sam = fleet.api_as("sam@support.example").await;
    let (status, ticket) = alice
        .post(
            "/api/v1/tickets",
            json!({"cluster_id": orders,
                   "target_time": target.to_rfc3339_opts(SecondsFormat::Micros, true),
                   "new_cluster_name": "orders-bench", "severity": "A",
                   "description": "benchmark"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{ticket}");
    let id = ticket["id"].as_str().unwrap().to_string();
    let (status, _) = sam
        .post(&format!("/api/v1/tickets/{id}/claim"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let began = Instant::now();
    let (status, _) = sam
        .post(&format!("/api/v1/tickets/{id}/approve"), json!({}))
        .await;
    assert_eq!(status, StatusCode::OK);
    let ended: Value = fleet
        .wait_for(
            "the desk's restore",
            Duration::from_secs(3600),
            async || {
                let (_, ticket) = sam.get(&format!("/api/v1/tickets/{id}")).await;
                matches!(ticket["state"].as_str(), Some("completed" | "failed")).then_some(ticket)
            },
        )
        .await;
    let ours = began.elapsed().as_secs_f64();
    assert_eq!(ended["state"], "completed", "{ended}:{}", fleet.logs());
    let job_id = ended["job"]["id"].as_str().unwrap();
    let (_, job) = sam.get(&format!("/api/v1/jobs/{job_id}")).await;
    assert_eq!(job["host"], "r1", "{job}");
    let snapshot = job["snapshot_id"].as_str().unwrap().to_string();
    let zone = job["zone"].as_str().unwrap().to_string();
    step(&format!(
        "the desk restored {snapshot} from {zone} in {ours:.1} s"
    ));
    let (_, copy) = alice
        .get(&format!(
            "/api/v1/clusters/{}",
            ended["new_cluster_id"].as_str().unwrap()
        ))
        .await;
    let port = copy["connection"]["port"].as_u64().unwrap() as u16;
    assert_eq!(
        fleet.psql(
            "r1",
            port,
            "postgres",
            "SELECT string_agg(phase, ',') FROM marks"
        ),
        "before"
    );
    // The copy's own server stops, so that both sides run alone.
    let status = ada
        .delete(&format!(
            "/api/v1/clusters/{}",
            copy["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    fleet
        .wait_for(
            "the desk's copy stopped",
            Duration::from_secs(60),
            async || pg_down(&fleet, port).then_some(()),
        )
        .await;

    // By hand on the same host: the same zone, backup set and target.
    let hand = fleet.root.join("r1").join("by-hand");
    let data = hand.join("data");
    std::fs::create_dir_all(&data).unwrap();
    run(
        {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres", &hand.display().to_string()]);
            c
        },
        "chown",
    );
    run(
        {
            let mut c = Command::new("chmod");
            c.args(["700", &data.display().to_string()]);
            c
        },
        "chmod",
    );
    let r1_conf = fleet.root.join("r1").join("host").join("pgbackrest.conf");
    let repo = zone.trim_start_matches("az").to_string();
    let began = Instant::now();
    let mut restore = fleet.lan.as_user("r1", "postgres", "pgbackrest");
    restore
        .arg(format!("--config={}", r1_conf.display()))
        .arg(format!("--stanza={SOURCE_STANZA}"))
        .arg(format!("--repo={repo}"))
        .args(["--io-timeout=2", "--protocol-timeout=30"])
        .arg(format!("--set={snapshot}"))
        .arg("--type=time")
        .arg(format!(
            "--target={}",
            target.format("%Y-%m-%d %H:%M:%S%.6f+00:00")
        ))
        .args(["--target-action=promote", "--archive-mode=off"])
        .arg(format!("--pg1-path={}", data.display()))
        .arg("restore");
    run(restore, "pgbackrest restore by hand");
    let restored_bytes = bytes_under(&data);
    let mut auto = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    auto.push_str(&format!(
        "port = {HAND_PORT}\nlisten_addresses = '*'\nunix_socket_directories = '{}'\n",
        hand.display()
    ));
    std::fs::write(data.join("postgresql.auto.conf"), auto).unwrap();
    let mut start = fleet
        .lan
        .as_user("r1", "postgres", &format!("{PG_BIN}/pg_ctl"));
    start.args([
        "-D",
        &data.display().to_string(),
        "-l",
        &hand.join("server.log").display().to_string(),
        "-w",
        "-t",
        "3600",
        "start",
    ]);
    run(start, "pg_ctl start by hand");
    loop {
        let mut ask = fleet
            .lan
            .as_user("r1", "postgres", &format!("{PG_BIN}/psql"));
        ask.args([
            "-h",
            &hand.display().to_string(),
            "-p",
            &HAND_PORT.to_string(),
            "-XAtqc",
            "SELECT pg_is_in_recovery()",
            "postgres",
        ]);
        if ask.output().is_ok_and(|o| o.stdout.starts_with(b"f")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let by_hand = began.elapsed().as_secs_f64();
    step(&format!("by hand in {by_hand:.1} s"));
    let mut stop = fleet
        .lan
        .as_user("r1", "postgres", &format!("{PG_BIN}/pg_ctl"));
    stop.args([
        "-D",
        &data.display().to_string(),
        "-m",
        "fast",
        "-w",
        "stop",
    ]);
    run(stop, "pg_ctl stop by hand");

    // The ceiling: the restored data directory (stopped, so it holds
    // still) sent by tar from the source host to the restore host.
    let source_data = data.clone();
    let landing = fleet.root.join("r1").join("tar-copy");
    std::fs::create_dir_all(&landing).unwrap();
    let listen = "import socket, sys, shutil\n\
         s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('0.0.0.0', 9900)); s.listen(1)\n\
         c, _ = s.accept(); shutil.copyfileobj(c.makefile('rb'), sys.stdout.buffer)\n";
    let mut receiver = fleet.lan.command("r1", "bash");
    receiver
        .arg("-c")
        .arg(format!(
            "python3 -c \"$LISTEN\" | tar -xf - -C {}",
            landing.display()
        ))
        .env("LISTEN", listen)
        .stdout(Stdio::null());
    let mut receiver = receiver.spawn().expect("the tar receiver");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tar_bytes = bytes_under(&source_data);
    let began = Instant::now();
    let mut sender = fleet.lan.command("src", "bash");
    sender.arg("-c").arg(format!(
        "tar -cf - -C {} . > /dev/tcp/{}/9900",
        source_data.display(),
        fleet.lan.address("r1")
    ));
    run(sender, "tar from src");
    assert!(receiver.wait().unwrap().success(), "the tar receiver");
    let tar_seconds = began.elapsed().as_secs_f64();
    step(&format!(
        "tar copied {:.0} MB in {tar_seconds:.1} s",
        tar_bytes / 1e6
    ));

    let restore_mbs = restored_bytes / 1e6 / ours;
    let tar_mbs = tar_bytes / 1e6 / tar_seconds;
    println!();
    println!("| figure | ours | baseline | ratio | target |");
    println!("| --- | --- | --- | --- | --- |");
    println!(
        "| restore across hosts, scale {scale}, {log_mb} MB of log: approve -> completed vs by hand | {ours:.1} s | {by_hand:.1} s | {:.2}x | <= 1.10x + 5 s: {} |",
        ours / by_hand,
        if ours <= 1.10 * by_hand + 5.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    println!(
        "| restore MB/s ({:.0} MB data directory) vs tar src -> r1 | {restore_mbs:.1} MB/s | {tar_mbs:.1} MB/s | {:.2}x | the ceiling |",
        restored_bytes / 1e6,
        restore_mbs / tar_mbs
    );
}

/// Whether nothing answers on the restore host's `port` any more.
fn pg_down(fleet: &HostFleet, port: u16) -> bool {
    !Command::new(format!("{PG_BIN}/pg_isready"))
        .args([
            "-h",
            &fleet.lan.address("r1").to_string(),
            "-p",
            &port.to_string(),
            "-t",
            "1",
        ])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
