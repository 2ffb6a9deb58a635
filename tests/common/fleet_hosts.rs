//! A fleet across hosts of a test's own: every host a network namespace on
//! one switch (`fleet_net::Lan`), the desk's PostgreSQL and web desk on
//! `desk`, a zone worker on each of `az1`–`az3` keeping that zone's
//! repository, restore workers on the restore hosts, and a source cluster
//! on `src` set up as an operator would, outside the desk: its own
//! PostgreSQL, its own pgBackRest configuration archiving into the zones,
//! its own TLS server for the zones' backups. Everything is removed when
//! it is dropped.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::fleet_net::Lan;

pub const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");
const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
pub const SOURCE_STANZA: &str = "orders";
pub const SOURCE_PORT: u16 = 5432;
const DESK_PORT: u16 = 8080;
pub const PASSWORD: &str = "a fleet test password";

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

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

fn chown_postgres(path: &Path) {
    run(
        {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres", &path.display().to_string()]);
            c
        },
        "chown",
    );
}

/// What a test wants of its fleet.
pub struct FleetPlan<'a> {
    pub restore_hosts: &'a [&'a str],
    /// A restore host's data root on a tmpfs of this many MiB.
    pub small_hosts: &'a [(&'a str, u32)],
    /// Extra settings of every desk process.
    pub env: &'a [(&'a str, &'a str)],
    /// Restore hosts whose worker the test starts itself, later.
    pub idle: &'a [&'a str],
}

impl Default for FleetPlan<'_> {
    fn default() -> Self {
        FleetPlan {
            restore_hosts: &["r1", "r2"],
            small_hosts: &[],
            env: &[],
            idle: &[],
        }
    }
}

pub struct HostFleet {
    pub lan: Lan,
    pub root: PathBuf,
    pub desk_url: String,
    pub api: String,
    processes: BTreeMap<String, (Child, PathBuf)>,
    env: Vec<(String, String)>,
    mounts: Vec<PathBuf>,
}

impl Drop for HostFleet {
    fn drop(&mut self) {
        for (_, (child, _)) in self.processes.iter_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // The Lan's drop kills what still runs in its namespaces (the
        // PostgreSQL servers and pgBackRest servers among them).
        for mount in &self.mounts {
            let _ = Command::new("umount").arg("-l").arg(mount).status();
        }
        if std::env::var_os("KEEP_FLEET").is_none() {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl HostFleet {
    /// Hosts, the desk's database, certificates, the zone workers, the
    /// source, the web desk and the restore workers, in that order.
    pub async fn start(plan: FleetPlan<'_>) -> HostFleet {
        let mut hosts = vec!["desk", "src", "az1", "az2", "az3"];
        hosts.extend(plan.restore_hosts.iter().copied());
        let lan = Lan::create(&hosts);
        // Short: a restored copy's socket path under it must stay within
        // the 107 bytes a Unix socket's name may have.
        let root = PathBuf::from(format!(
            "/var/tmp/rdh-{}",
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        ));
        std::fs::create_dir_all(&root).unwrap();
        for host in &hosts {
            std::fs::create_dir_all(root.join(host)).unwrap();
        }
        std::fs::create_dir_all(root.join("logs")).unwrap();
        let mut mounts = Vec::new();
        for (host, mib) in plan.small_hosts {
            let dir = root.join(host);
            run(
                {
                    let mut c = Command::new("mount");
                    c.args(["-t", "tmpfs", "-o", &format!("size={mib}m,mode=0755")])
                        .arg("tmpfs")
                        .arg(&dir);
                    c
                },
                "mount a small tmpfs",
            );
            mounts.push(dir);
        }
        chown_postgres(&root);
        run(
            {
                let mut c = Command::new("chmod");
                c.args(["755", &root.display().to_string()]);
                c
            },
            "chmod",
        );
        let desk_url = format!("postgres://postgres@{}:5432/desk", lan.address("desk"));
        let api = format!("http://{}:{DESK_PORT}", lan.address("desk"));
        let mut fleet = HostFleet {
            lan,
            root,
            desk_url,
            api,
            processes: BTreeMap::new(),
            env: plan
                .env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            mounts,
        };
        fleet.start_postgres("desk", &fleet.root.join("desk").join("pg"), 5432);
        fleet.psql("desk", 5432, "postgres", "CREATE DATABASE desk");
        fleet.write_description(plan.restore_hosts);
        fleet.desk_command(&["migrate"]);
        fleet.desk_command(&[
            "fleet",
            "certs",
            "--out",
            &fleet.pki().display().to_string(),
        ]);
        for zone in ["az1", "az2", "az3"] {
            fleet.start_worker(zone);
        }
        fleet.wait_for_tls(&["az1", "az2", "az3"]);
        fleet.start_source();
        fleet.start_desk();
        let started: Vec<&str> = plan
            .restore_hosts
            .iter()
            .copied()
            .filter(|h| !plan.idle.contains(h))
            .collect();
        for host in &started {
            fleet.start_worker(host);
        }
        fleet.wait_for_tls(&started);
        fleet.people();
        fleet
    }

    pub fn pki(&self) -> PathBuf {
        self.root.join("pki")
    }

    fn tls_dir(&self, host: &str) -> PathBuf {
        self.pki().join("hosts").join(host)
    }

    fn description_path(&self) -> PathBuf {
        self.root.join("fleet.toml")
    }

    fn write_description(&self, restore_hosts: &[&str]) {
        let mut text = String::new();
        for (i, zone) in ["az1", "az2", "az3"].iter().enumerate() {
            let _ = i;
            text.push_str(&format!(
                "[[host]]\nname = \"{zone}\"\nrole = \"zone\"\naddress = \"{}\"\nzone = \"{zone}\"\ndata_root = \"{}\"\n\n",
                self.lan.dns(zone),
                self.root.join(zone).display()
            ));
        }
        for host in restore_hosts {
            text.push_str(&format!(
                "[[host]]\nname = \"{host}\"\nrole = \"restore\"\naddress = \"{}\"\ndata_root = \"{}\"\nmax_restores = 2\n\n",
                self.lan.dns(host),
                self.root.join(host).display()
            ));
        }
        text.push_str(&format!(
            "[[host]]\nname = \"src\"\nrole = \"source\"\naddress = \"{}\"\n",
            self.lan.dns("src")
        ));
        write(&self.description_path(), &text);
    }

    /// The settings every desk process of `host` runs with.
    fn desk_env(&self, host: &str, command: &mut Command) {
        let tls = if host == "desk" || host == "root" {
            self.tls_dir("desk")
        } else {
            self.tls_dir(host)
        };
        command
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("BACKEND", "pgbackrest")
            .env("DATABASE_URL", &self.desk_url)
            .env("FLEET_CONFIG", self.description_path())
            .env(
                "FLEET_DIR",
                self.root.join(if host == "root" { "desk" } else { host }),
            )
            .env("FLEET_TLS_DIR", tls)
            .env("RESTORE_HOST", if host == "root" { "desk" } else { host })
            .env("PG_OS_USER", "postgres")
            .env("MAIL_DIR", self.root.join("mail"))
            .env("DRILL_INTERVAL_HOURS", "0")
            .env("SCHEDULER_SECONDS", "2")
            .env("LEASE_SECONDS", "5")
            .env("HOST_LOST_SECONDS", "10")
            .env("RETRY_BASE_MS", "1000")
            .env("FLEET_PORTS", "56400-56419")
            .env("LOGIN_RATE_LIMIT", "0")
            .env("FILING_RATE_LIMIT", "0")
            .env("RUST_LOG", "info,restore_desk=debug,sqlx=warn")
            .env("NO_COLOR", "1")
            .env("BIND", format!("0.0.0.0:{DESK_PORT}"))
            .env("PUBLIC_URL", &self.api)
            .stdin(Stdio::null());
        for (key, value) in &self.env {
            command.env(key, value);
        }
    }

    /// A one-off `restore-desk` command from the test's own namespace.
    pub fn desk_command(&self, args: &[&str]) -> String {
        let mut command = Command::new(BIN);
        command.args(args);
        self.desk_env("root", &mut command);
        run(command, &format!("restore-desk {args:?}"))
    }

    /// The same, expected to fail: its stderr.
    pub fn desk_command_fails(&self, args: &[&str]) -> String {
        let mut command = Command::new(BIN);
        command.args(args);
        self.desk_env("root", &mut command);
        let out = command.output().unwrap();
        assert!(!out.status.success(), "restore-desk {args:?} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn spawn(&mut self, name: &str, host: &str, args: &[&str]) {
        let log = self.root.join("logs").join(format!("{name}.log"));
        let mut command = self.lan.command(host, BIN);
        command.args(args);
        self.desk_env(host, &mut command);
        command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        let child = command.spawn().expect("start a desk process");
        self.processes.insert(name.to_string(), (child, log));
    }

    /// `restore-desk worker --host HOST` on that host.
    pub fn start_worker(&mut self, host: &str) {
        self.spawn(host, host, &["worker", "--host", host]);
    }

    /// Kills a desk process hard.
    pub fn kill(&mut self, name: &str) {
        if let Some((mut child, _)) = self.processes.remove(name) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.root.join("logs").join(format!("{name}.log")))
            .unwrap_or_default()
    }

    /// Every desk process's log, for a failure message.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        for name in self.processes.keys() {
            let log = self.log(name);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            all.push_str(&format!("\n===== {name} =====\n"));
            for line in tail.into_iter().rev() {
                all.push_str(line);
                all.push('\n');
            }
        }
        all
    }

    fn start_desk(&mut self) {
        self.spawn("desk", "desk", &["serve"]);
        let health = format!("{}/healthz", self.api);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let up = Command::new("curl")
                .args(["-sf", "--max-time", "2", &health])
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the desk did not start:{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until every host's pgBackRest TLS server answers.
    fn wait_for_tls(&self, hosts: &[&str]) {
        for host in hosts {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let mut ping = self.lan.as_user("desk", "postgres", "pgbackrest");
                ping.args([
                    &format!("--tls-server-address={}", self.lan.dns(host)),
                    "--tls-server-port=8432",
                    "--io-timeout=1",
                    "server-ping",
                ]);
                if ping.output().is_ok_and(|o| o.status.success()) {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{host}'s TLS server did not start:{}",
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }

    /// A PostgreSQL server on `host`, trusting the Lan.
    fn start_postgres(&self, host: &str, data: &Path, port: u16) {
        let data_text = data.display().to_string();
        let mut initdb = self
            .lan
            .as_user(host, "postgres", &format!("{PG_BIN}/initdb"));
        initdb.args([
            "-D",
            &data_text,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
        ]);
        run(initdb, "initdb");
        let socket = data.parent().unwrap().join("run");
        std::fs::create_dir_all(&socket).unwrap();
        chown_postgres(&socket);
        let mut conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        conf.push_str(&format!(
            "\nlisten_addresses = '*'\nport = {port}\nunix_socket_directories = '{}'\n\
             fsync = off\nmax_wal_size = 256MB\nlog_line_prefix = '%m [%p] '\n",
            socket.display()
        ));
        write(&data.join("postgresql.conf"), &conf);
        let mut hba = std::fs::read_to_string(data.join("pg_hba.conf")).unwrap();
        hba.push_str("host all all 10.214.0.0/16 trust\n");
        write(&data.join("pg_hba.conf"), &hba);
        chown_postgres(data.parent().unwrap());
        self.pg_ctl(host, data, "start");
    }

    fn pg_ctl(&self, host: &str, data: &Path, action: &str) {
        let log = data.parent().unwrap().join("server.log");
        let mut ctl = self
            .lan
            .as_user(host, "postgres", &format!("{PG_BIN}/pg_ctl"));
        ctl.args([
            "-D",
            &data.display().to_string(),
            "-l",
            &log.display().to_string(),
            "-w",
            "-t",
            "60",
            action,
        ]);
        run(ctl, &format!("pg_ctl {action} on {host}"));
    }

    /// SQL on a server of the Lan, from the test: what psql printed.
    pub fn psql(&self, host: &str, port: u16, database: &str, sql: &str) -> String {
        let mut psql = Command::new(format!("{PG_BIN}/psql"));
        psql.args([
            "-h",
            &self.lan.address(host).to_string(),
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            database,
            "-XAtq",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ]);
        run(psql, &format!("psql on {host}: {sql}"))
            .trim()
            .to_string()
    }

    pub fn source_dir(&self) -> PathBuf {
        self.root.join("src")
    }

    pub fn source_conf(&self) -> PathBuf {
        self.source_dir().join("pgbackrest.conf")
    }

    /// The source as its operator sets it up: PostgreSQL archiving into
    /// the three zones with its own pgBackRest configuration, a TLS server
    /// for the zones' backups, and its stanza created in every zone.
    fn start_source(&mut self) {
        let dir = self.source_dir();
        for sub in ["log", "lock", "spool"] {
            std::fs::create_dir_all(dir.join(sub)).unwrap();
        }
        let tls = self.tls_dir("src");
        let mut conf = format!(
            "[global]\nlog-path={d}/log\nlock-path={d}/lock\nspool-path={d}/spool\n\
             compress-type=zst\nstart-fast=y\n",
            d = dir.display()
        );
        for (n, zone) in ["az1", "az2", "az3"].iter().enumerate() {
            let n = n + 1;
            conf.push_str(&format!(
                "repo{n}-host={}\nrepo{n}-host-type=tls\nrepo{n}-host-port=8432\n\
                 repo{n}-host-config={}/host/pgbackrest.conf\n\
                 repo{n}-host-ca-file={t}/ca.crt\nrepo{n}-host-cert-file={t}/client.crt\n\
                 repo{n}-host-key-file={t}/client.key\n",
                self.lan.dns(zone),
                self.root.join(zone).display(),
                t = tls.display()
            ));
        }
        conf.push_str(&format!(
            "tls-server-address=*\ntls-server-port=8432\ntls-server-ca-file={t}/ca.crt\n\
             tls-server-cert-file={t}/server.crt\ntls-server-key-file={t}/server.key\n\
             tls-server-auth=az1={SOURCE_STANZA}\ntls-server-auth=az2={SOURCE_STANZA}\n\
             tls-server-auth=az3={SOURCE_STANZA}\n\n\
             [global:archive-push]\narchive-async=y\nio-timeout=2\nprotocol-timeout=30\n\n\
             [{SOURCE_STANZA}]\npg1-path={d}/pg\npg1-port={SOURCE_PORT}\npg1-socket-path={d}/run\n",
            t = tls.display(),
            d = dir.display()
        ));
        write(&self.source_conf(), &conf);
        chown_postgres(&dir);
        let data = dir.join("pg");
        self.start_postgres("src", &data, SOURCE_PORT);
        let mut pg_conf = std::fs::read_to_string(data.join("postgresql.conf")).unwrap();
        pg_conf.push_str(&format!(
            "wal_level = replica\narchive_mode = on\narchive_timeout = 2\n\
             archive_command = 'pgbackrest --config={} --stanza={SOURCE_STANZA} archive-push %p'\n",
            self.source_conf().display()
        ));
        write(&data.join("postgresql.conf"), &pg_conf);
        self.pg_ctl("src", &data, "restart");
        // Its TLS server, for the zones' backups.
        let mut server = self.lan.as_user("src", "postgres", "pgbackrest");
        server
            .arg(format!("--config={}", self.source_conf().display()))
            .arg("server")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = server.spawn().expect("start the source's TLS server");
        self.processes.insert(
            "src-tls".into(),
            (child, self.root.join("logs/src-tls.log")),
        );
        self.wait_for_tls(&["src"]);
        self.source_backrest(&["stanza-create"]);
        self.source_backrest(&["check"]);
    }

    /// `pgbackrest` on the source host with its own configuration.
    pub fn source_backrest(&self, args: &[&str]) -> String {
        let mut command = self.lan.as_user("src", "postgres", "pgbackrest");
        command
            .arg(format!("--config={}", self.source_conf().display()))
            .arg(format!("--stanza={SOURCE_STANZA}"))
            .args(args);
        run(command, &format!("pgbackrest {args:?} on src"))
    }

    /// An admin, a staff member and a customer of `contoso`.
    fn people(&self) {
        for (email, role, subscription) in [
            ("ada@admin.example", "admin", None),
            ("sam@support.example", "staff", None),
            ("alice@contoso.example", "customer", Some("contoso")),
        ] {
            let mut args = vec![
                "user",
                "create",
                "--email",
                email,
                "--role",
                role,
                "--password",
                PASSWORD,
            ];
            if let Some(s) = subscription {
                args.extend(["--subscription", s]);
            }
            self.desk_command(&args);
        }
    }

    /// A bearer-token client of the desk's API, signed in as `email`.
    pub async fn api_as(&self, email: &str) -> ApiClient {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let answer: Value = client
            .post(format!("{}/api/v1/login", self.api))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("login: {answer}"))
            .to_string();
        ApiClient {
            base: self.api.clone(),
            client,
            token,
        }
    }

    /// Registers the source through the API as Ada; the answer.
    pub async fn register_source(&self, name: &str, stanza: &str) -> (StatusCode, Value) {
        let ada = self.api_as("ada@admin.example").await;
        ada.post(
            "/api/v1/clusters",
            json!({
                "name": name,
                "subscription": "contoso",
                "resource_group": "rg-prod",
                "region": "westeurope",
                "host": "src",
                "port": SOURCE_PORT,
                "stanza": stanza,
                "data_directory": self.source_dir().join("pg").display().to_string(),
                "socket_directory": self.source_dir().join("run").display().to_string(),
                "backrest_config": self.source_conf().display().to_string(),
                "database": "postgres",
                "user": "postgres",
                "tier": "GeneralPurpose",
                "vcores": 2,
                "storage_gib": 32,
                "server_version": "15"
            }),
        )
        .await
    }

    /// A restore host's worker started and its TLS server answering.
    pub fn start_restore_host(&mut self, host: &str) {
        self.start_worker(host);
        self.wait_for_tls(&[host]);
    }

    /// Signs `email` in to the web desk: a browser with its session.
    pub async fn browser_as(&self, email: &str) -> super::web::Browser {
        let mut browser = super::web::Browser::new(&self.api);
        browser.page("/login").await;
        let response = browser
            .post("/login", &[("email", email), ("password", PASSWORD)])
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "sign-in of {email}"
        );
        browser
    }

    /// Polls `probe` every 250 ms until it answers, for at most `limit`.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        limit: Duration,
        mut probe: impl AsyncFnMut() -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

pub struct ApiClient {
    pub base: String,
    client: reqwest::Client,
    token: String,
}

impl ApiClient {
    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn delete(&self, path: &str) -> StatusCode {
        self.client
            .delete(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
            .status()
    }
}
