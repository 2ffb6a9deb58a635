//! The test fleet's network, checked with the real pgBackRest: hosts on one
//! switch know each other by name; a TLS server on az1 with certificates
//! from the fleet's CA answers r1 by name, lets in r1's client certificate
//! and no other; a pulled cable and a silent host make pings fail within
//! a bounded time and plugging back makes them pass; lost packets slow
//! pings without failing most; a delay proxy holds answers by its delay,
//! without serialising a stream; and nothing is left once the Lan drops.

mod common;

use std::io::{Read, Seek, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::fleet_net::{Lan, namespaces, root_link_exists};
use restore_desk::fleet::pki::{self, CertHost};

const TLS_PORT: u16 = 8432;

/// What a command did within its time limit.
struct Ran {
    ok: bool,
    took: Duration,
    output: String,
}

/// Runs `command` for at most `limit`, then kills its process group.
/// Output goes to a file, so a straggler holding it open blocks nothing.
fn run_bounded(mut command: Command, limit: Duration) -> Ran {
    use std::os::unix::process::CommandExt;
    let mut log = tempfile::tempfile().unwrap();
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log.try_clone().unwrap())
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn().expect("spawn");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > limit {
            // SAFETY: kill has no memory effects; the group is the child's.
            unsafe {
                libc::kill(-(child.id() as i32), libc::SIGKILL);
            }
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let mut output = String::new();
    log.rewind().unwrap();
    log.read_to_string(&mut output).unwrap();
    if status.is_none() {
        output += &format!("\n(killed after {limit:?})");
    }
    Ran {
        ok: status.is_some_and(|s| s.success()),
        took,
        output,
    }
}

/// Polls `probe` every 100 ms until it holds, for at most `limit`.
fn eventually(limit: Duration, mut probe: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if probe() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn postgres_ids() -> (u32, u32) {
    let id = |flag: &str| {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .unwrap();
        assert!(out.status.success(), "the postgres account is needed");
        String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

/// A folder for one test under /var/tmp: postgres cannot traverse /root,
/// and /tmp's private folders are mode 700.
fn shared_folder() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("rd-fleet-net-")
        .tempdir_in("/var/tmp")
        .unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    dir
}

/// A folder postgres owns, mode 700.
fn postgres_dir(path: &Path) -> PathBuf {
    let (uid, gid) = postgres_ids();
    std::fs::create_dir_all(path).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).unwrap();
    path.to_path_buf()
}

fn postgres_file(path: &Path, text: &str) {
    let (uid, gid) = postgres_ids();
    std::fs::write(path, text).unwrap();
    std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The two hosts' pgBackRest: az1 serves TLS (and a repository, so an
/// authenticated command has something to read), r1 is its client.
struct Fleet {
    root: tempfile::TempDir,
    az1_conf: PathBuf,
    r1_conf: PathBuf,
}

impl Fleet {
    fn pki(&self) -> PathBuf {
        self.root.path().join("pki")
    }

    fn write(lan: &Lan) -> Fleet {
        let root = shared_folder();
        let pki_dir = root.path().join("pki");
        let hosts: Vec<CertHost> = ["az1", "r1"]
            .iter()
            .map(|h| CertHost {
                name: h.to_string(),
                dns: lan.dns(h),
            })
            .collect();
        pki::issue(&pki_dir, &hosts, Some(postgres_ids())).unwrap();

        let home = |host: &str| {
            let dir = postgres_dir(&root.path().join(host));
            postgres_dir(&dir.join("log"));
            postgres_dir(&dir.join("lock"));
            dir
        };
        let tls = |host: &str, file: &str| pki::host_dir(&pki_dir, host).join(file);

        let az1 = home("az1");
        postgres_dir(&az1.join("repo"));
        let az1_conf = az1.join("pgbackrest.conf");
        postgres_file(
            &az1_conf,
            &format!(
                "[global]\n\
                 log-path={az1}/log\n\
                 lock-path={az1}/lock\n\
                 log-level-file=detail\n\
                 repo1-path={az1}/repo\n\
                 tls-server-address={address}\n\
                 tls-server-port={TLS_PORT}\n\
                 tls-server-ca-file={ca}\n\
                 tls-server-cert-file={cert}\n\
                 tls-server-key-file={key}\n\
                 tls-server-auth=r1=*\n",
                az1 = az1.display(),
                address = lan.address("az1"),
                ca = tls("az1", pki::CA_CERT).display(),
                cert = tls("az1", pki::SERVER_CERT).display(),
                key = tls("az1", pki::SERVER_KEY).display(),
            ),
        );

        let r1 = home("r1");
        let r1_conf = r1.join("pgbackrest.conf");
        postgres_file(
            &r1_conf,
            &format!(
                "[global]\n\
                 log-path={r1}/log\n\
                 lock-path={r1}/lock\n\
                 log-level-file=detail\n\
                 repo1-host={az1_dns}\n\
                 repo1-host-type=tls\n\
                 repo1-host-port={TLS_PORT}\n\
                 repo1-host-config={az1_conf}\n\
                 repo1-host-ca-file={ca}\n\
                 repo1-host-cert-file={cert}\n\
                 repo1-host-key-file={key}\n",
                r1 = r1.display(),
                az1_dns = lan.dns("az1"),
                az1_conf = az1_conf.display(),
                ca = tls("r1", pki::CA_CERT).display(),
                cert = tls("r1", pki::CLIENT_CERT).display(),
                key = tls("r1", pki::CLIENT_KEY).display(),
            ),
        );
        Fleet {
            root,
            az1_conf,
            r1_conf,
        }
    }

    /// az1's TLS server, in the background; the Lan ends it.
    fn start_server(&self, lan: &Lan) -> std::process::Child {
        let out = std::fs::File::create(self.root.path().join("az1-server.out")).unwrap();
        lan.as_user("az1", "postgres", "pgbackrest")
            .arg(format!("--config={}", self.az1_conf.display()))
            .arg("server")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start pgbackrest server")
    }

    /// `pgbackrest server-ping` from r1 to az1 by name, at `port`.
    fn ping(&self, lan: &Lan, port: u16, io_timeout: u32) -> Ran {
        let mut command = lan.as_user("r1", "postgres", "pgbackrest");
        command.args([
            format!("--config={}", self.r1_conf.display()),
            format!("--tls-server-address={}", lan.dns("az1")),
            format!("--tls-server-port={port}"),
            format!("--io-timeout={io_timeout}"),
            "server-ping".to_string(),
        ]);
        run_bounded(command, Duration::from_secs(u64::from(io_timeout) * 6 + 10))
    }

    /// An authenticated command from r1 on az1's repository: `info` with
    /// r1's configuration, changed by `options`.
    fn info(&self, lan: &Lan, options: &[String]) -> Ran {
        let mut command = lan.as_user("r1", "postgres", "pgbackrest");
        command
            .arg(format!("--config={}", self.r1_conf.display()))
            .args(options)
            .args([
                "--repo=1",
                "--io-timeout=2",
                "--log-level-console=warn",
                "info",
            ]);
        run_bounded(command, Duration::from_secs(30))
    }
}

#[test]
fn a_tls_server_on_one_host_answers_another_through_each_fault() {
    let hosts_before = std::fs::read("/etc/hosts").unwrap();
    let started = Instant::now();
    let lan = Lan::create(&["az1", "r1"]);
    eprintln!("Lan of two hosts up after {:?}", started.elapsed());
    let namespaces_of_lan = lan.all_namespaces();
    let uplink = lan.uplink();
    let fleet = Fleet::write(&lan);

    // Names: every host knows every host, and localhost; the root
    // namespace's /etc/hosts is not touched.
    let getent = |host: &str, name: &str| {
        let out = lan
            .command(host, "getent")
            .args(["hosts", name])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(getent("r1", "az1.fleet.test").starts_with(&format!("{} ", lan.address("az1"))));
    assert!(getent("az1", "r1.fleet.test").starts_with(&format!("{} ", lan.address("r1"))));
    assert!(getent("r1", "localhost").contains("localhost"));
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), hosts_before);

    let mut server = fleet.start_server(&lan);
    let started = Instant::now();
    assert!(
        eventually(Duration::from_secs(15), || fleet.ping(&lan, TLS_PORT, 1).ok),
        "az1's TLS server never answered: {}",
        std::fs::read_to_string(fleet.root.path().join("az1-server.out")).unwrap_or_default()
    );
    eprintln!("server up after {:?}", started.elapsed());

    // The test process reaches the host by address.
    let az1 = SocketAddr::from((lan.address("az1"), TLS_PORT));
    TcpStream::connect_timeout(&az1, Duration::from_secs(2)).expect("root reaches az1");

    // The certificates: r1 is let in by its client certificate's name and
    // trusts az1's server certificate by its DNS name ...
    let allowed = fleet.info(&lan, &[]);
    assert!(allowed.ok, "{}", allowed.output);
    assert!(
        allowed.output.contains("No stanzas exist"),
        "{}",
        allowed.output
    );
    // ... a client certificate with another name is refused ...
    let host_file = |host: &str, file: &str| {
        pki::host_dir(&fleet.pki(), host)
            .join(file)
            .display()
            .to_string()
    };
    let stranger = fleet.info(
        &lan,
        &[
            format!(
                "--repo1-host-cert-file={}",
                host_file("az1", pki::CLIENT_CERT)
            ),
            format!(
                "--repo1-host-key-file={}",
                host_file("az1", pki::CLIENT_KEY)
            ),
        ],
    );
    assert!(
        stranger.output.contains("access denied"),
        "{}",
        stranger.output
    );
    // ... and az1 is known by name only, never by address.
    let by_address = fleet.info(&lan, &[format!("--repo1-host={}", lan.address("az1"))]);
    assert!(
        by_address.output.contains("unable to find hostname"),
        "{}",
        by_address.output
    );

    // A pulled cable: az1 is cut off, within a bounded time, and back.
    let direct = fleet.ping(&lan, TLS_PORT, 1);
    assert!(direct.ok, "{}", direct.output);
    lan.link("az1", false);
    let cut = fleet.ping(&lan, TLS_PORT, 1);
    assert!(!cut.ok, "a ping crossed a pulled cable: {}", cut.output);
    assert!(cut.took < Duration::from_secs(15), "{:?}", cut.took);
    eprintln!("ping across a pulled cable failed after {:?}", cut.took);
    lan.link("az1", true);
    assert!(eventually(Duration::from_secs(15), || fleet
        .ping(&lan, TLS_PORT, 1)
        .ok));

    // A silent host.
    lan.blackhole("az1", true);
    let silent = fleet.ping(&lan, TLS_PORT, 1);
    assert!(!silent.ok, "a blackholed host answered: {}", silent.output);
    assert!(silent.took < Duration::from_secs(15), "{:?}", silent.took);
    eprintln!("ping of a blackholed host failed after {:?}", silent.took);
    lan.blackhole("az1", false);
    assert!(eventually(Duration::from_secs(15), || fleet
        .ping(&lan, TLS_PORT, 1)
        .ok));

    // Lost packets: TCP retransmits, most pings still pass.
    lan.loss("az1", 30);
    let started = Instant::now();
    let passed = (0..5).filter(|_| fleet.ping(&lan, TLS_PORT, 5).ok).count();
    let (sent, dropped) = lan.loss_counts("az1");
    eprintln!(
        "with 30 % loss: {passed}/5 pings passed in {:?}; az1 dropped {dropped} of {sent} packets",
        started.elapsed()
    );
    assert!(passed >= 3, "{passed} of 5 pings passed");
    assert!(
        dropped * 10 >= sent && dropped * 10 <= sent * 6,
        "{dropped} of {sent}"
    );
    lan.loss("az1", 0);
    assert!(fleet.ping(&lan, TLS_PORT, 1).ok);

    // A slow path: the same ping through a 300 ms delay proxy.
    let proxy = lan.delay_proxy("az1", 8442, TLS_PORT, Duration::from_millis(300));
    let fastest = |port: u16| {
        (0..3)
            .map(|_| {
                let ran = fleet.ping(&lan, port, 2);
                assert!(ran.ok, "port {port}: {}", ran.output);
                ran.took
            })
            .min()
            .unwrap()
    };
    let direct = fastest(TLS_PORT);
    let delayed = fastest(proxy.port());
    eprintln!("ping direct {direct:?}, through the 300 ms proxy {delayed:?}");
    assert!(
        delayed >= direct + Duration::from_millis(250),
        "direct {direct:?}, delayed {delayed:?}"
    );
    drop(proxy);

    // Nothing left: namespaces, their /etc/netns folders, the root's port,
    // the server.
    let server_pid = server.id();
    let started = Instant::now();
    drop(lan);
    eprintln!("Lan removed after {:?}", started.elapsed());
    let _ = server.wait();
    let left = namespaces();
    for ns in &namespaces_of_lan {
        assert!(!left.contains(ns), "{ns} left in {left:?}");
        assert!(
            !Path::new("/etc/netns").join(ns).exists(),
            "/etc/netns/{ns}"
        );
    }
    assert!(!root_link_exists(&uplink), "{uplink} left");
    assert!(
        common::fleet::processes_in(fleet.root.path()).is_empty(),
        "processes left: {:?}",
        common::fleet::processes_in(fleet.root.path())
    );
    assert!(!Path::new(&format!("/proc/{server_pid}/cmdline")).exists());
    assert_eq!(std::fs::read("/etc/hosts").unwrap(), hosts_before);
}

#[test]
fn the_delay_proxy_holds_a_stream_once_not_per_chunk() {
    let lan = Lan::create(&["az1"]);
    // A target on az1 that sends ten numbered chunks 30 ms apart.
    let target = {
        let address = lan.address("az1");
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        let thread = lan.spawn_in("az1", move || {
            let listener = TcpListener::bind((address, 0)).unwrap();
            bound_tx
                .send(listener.local_addr().unwrap().port())
                .unwrap();
            let (mut stream, _) = listener.accept().unwrap();
            stream.set_nodelay(true).unwrap();
            for i in 0..10u8 {
                stream.write_all(&[i]).unwrap();
                std::thread::sleep(Duration::from_millis(30));
            }
        });
        let port = bound_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        (thread, port)
    };
    let proxy = lan.delay_proxy("az1", 0, target.1, Duration::from_millis(300));

    // Timed from the connection on: the proxy holds answers, not connects.
    let mut stream = TcpStream::connect_timeout(&proxy.address(), Duration::from_secs(2)).unwrap();
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut first = [0u8; 1];
    stream.read_exact(&mut first).unwrap();
    let first_after = started.elapsed();
    let mut rest = Vec::new();
    stream.read_to_end(&mut rest).unwrap();
    let all_after = started.elapsed();
    eprintln!("first byte after {first_after:?}, all after {all_after:?}");

    assert_eq!(first[0], 0);
    assert_eq!(rest, (1..10u8).collect::<Vec<_>>(), "order kept");
    assert!(first_after >= Duration::from_millis(290), "{first_after:?}");
    // Ten chunks held one after another would take 3 s.
    assert!(all_after < Duration::from_millis(1500), "{all_after:?}");
    target.0.join().unwrap();
    drop(proxy);
}

#[test]
fn what_a_crashed_run_left_is_removed_by_the_next_lan() {
    let crashed = Lan::create(&["crashed"]);
    let left = crashed.all_namespaces();
    let uplink = crashed.uplink();
    let mut sleeper = crashed
        .command("crashed", "sleep")
        .arg("600")
        .spawn()
        .unwrap();
    crashed.abandon();
    let present = namespaces();
    assert!(left.iter().all(|ns| present.contains(ns)), "{present:?}");
    assert!(root_link_exists(&uplink));

    let next = Lan::create(&["az1"]);
    let present = namespaces();
    for ns in &left {
        assert!(!present.contains(ns), "{ns} left in {present:?}");
        assert!(
            !Path::new("/etc/netns").join(ns).exists(),
            "/etc/netns/{ns}"
        );
    }
    if next.uplink() != uplink {
        assert!(!root_link_exists(&uplink), "{uplink} left");
    }
    assert!(
        eventually(Duration::from_secs(5), || sleeper
            .try_wait()
            .unwrap()
            .is_some()),
        "the crashed run's process still runs"
    );
}
