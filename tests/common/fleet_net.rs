//! Hosts of a test's own on one switch: a Linux bridge in a namespace of
//! its own, each host a namespace whose `eth0` is a port of that bridge,
//! and one more port reaching this (the root) namespace so the test talks
//! to every host by address. Every host knows every host as
//! `<host>.fleet.test` through `/etc/netns/<ns>/hosts`, which
//! `ip netns exec` lays over `/etc/hosts`; the root namespace's own files
//! and links stay as they were, but for the one port.
//!
//! Faults: a pulled cable (`link`), a host that drops everything
//! (`blackhole`), lost packets (`loss`) and slow answers (`delay_proxy`).
//! `tc netem` is not built into the kernels this runs on, so loss is
//! nftables in the host's namespace and delay a proxy in user space.
//!
//! Must run as root. Everything is removed when the `Lan` drops.
#![allow(dead_code)]

use std::fs::File;
use std::io::ErrorKind;
use std::marker::PhantomData;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixSocketAddr, UnixListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

/// The domain every host's name ends in.
pub const DOMAIN: &str = "fleet.test";

/// What every namespace and root link of a Lan is named after.
const PREFIX: &str = "rdlan";
/// Where `ip netns` keeps the namespaces it names.
const NETNS_RUN: &str = "/var/run/netns";
/// Where `ip netns exec` finds the files it lays over `/etc`.
const NETNS_ETC: &str = "/etc/netns";
/// The nftables tables the faults add inside a host's namespace.
const BLACKHOLE_TABLE: &str = "rd_blackhole";
const LOSS_TABLE: &str = "rd_loss";
const REDIRECT_TABLE: &str = "rd_redirect";

/// One switch and its hosts; see the module's doc.
pub struct Lan {
    /// The third octet of this Lan's 10.214.x.0/24, which also names its
    /// namespaces and its port in the root namespace.
    subnet: u8,
    hosts: Vec<LanHost>,
    /// Holding this is what makes the subnet and the names this Lan's:
    /// an abstract socket is released by the kernel when the process dies,
    /// so a crashed run's names are free to be cleaned up and reused.
    claim: Option<UnixListener>,
}

struct LanHost {
    name: String,
    ns: String,
    /// The host's port on the bridge, inside the switch's namespace.
    port: String,
    address: Ipv4Addr,
}

/// Runs `ip` with `args`; a failure is the test's failure.
fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Runs `ip` with `args` when its failure means there was nothing to do.
fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The namespaces `ip netns` knows by name.
pub fn namespaces() -> Vec<String> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Whether the root namespace has a link called `name`.
pub fn root_link_exists(name: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(name).exists()
}

/// The claim on one /24 of 10.214.0.0/16, if no live Lan holds it.
fn try_claim(subnet: u8) -> Option<UnixListener> {
    let name = format!("restore-desk/fleet-net/10.214.{subnet}.0");
    let address = UnixSocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    match UnixListener::bind_addr(&address) {
        Ok(claim) => Some(claim),
        Err(e) if e.kind() == ErrorKind::AddrInUse => None,
        Err(e) => panic!("claiming {name}: {e}"),
    }
}

/// Takes a /24 no live Lan holds, starting from one the process id and a
/// counter pick, so concurrent test processes (and Lans of one process)
/// start apart and never share one.
fn claim_subnet() -> (u8, UnixListener) {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let start = std::process::id()
        .wrapping_mul(16)
        .wrapping_add(NEXT.fetch_add(1, Ordering::SeqCst));
    for step in 0..254 {
        // 10.214.0.0/24 is left to the shell prototype's fleet.
        let subnet = (start.wrapping_add(step) % 254 + 1) as u8;
        if let Some(claim) = try_claim(subnet) {
            return (subnet, claim);
        }
    }
    panic!("every /24 of 10.214.0.0/16 is held by a live test process");
}

/// The subnet a Lan's name (`rdlan<subnet>` or `rdlan<subnet>-<host>`)
/// belongs to.
fn subnet_of(name: &str) -> Option<u8> {
    let rest = name.strip_prefix(PREFIX)?;
    let digits = rest.split('-').next()?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// Removes what Lans of processes that died left behind: any name of a
/// subnet nobody holds. The claim is held while removing, so a Lan that
/// starts meanwhile picks another subnet.
fn sweep_abandoned() {
    let mut names = namespaces();
    for dir in ["/sys/class/net", NETNS_ETC] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            names.extend(
                entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    let subnets: std::collections::BTreeSet<u8> =
        names.iter().filter_map(|n| subnet_of(n)).collect();
    for subnet in subnets {
        if let Some(_claim) = try_claim(subnet) {
            remove_lan(subnet);
        }
    }
}

fn check_host_name(name: &str) {
    let usable = !name.is_empty()
        && name.len() <= 20
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-');
    assert!(
        usable,
        "host name {name:?}: use up to 20 lowercase letters, digits and '-'"
    );
}

impl Lan {
    /// A switch with `hosts` on it, each up, addressed and named.
    pub fn create(hosts: &[&str]) -> Lan {
        for (i, name) in hosts.iter().enumerate() {
            check_host_name(name);
            assert!(!hosts[..i].contains(name), "host {name:?} listed twice");
        }
        assert!(hosts.len() <= 200, "a Lan has room for 200 hosts");
        sweep_abandoned();
        let (subnet, claim) = claim_subnet();
        let lan = Lan {
            subnet,
            hosts: hosts
                .iter()
                .enumerate()
                .map(|(i, name)| LanHost {
                    name: name.to_string(),
                    ns: format!("{PREFIX}{subnet}-{name}"),
                    port: format!("p{i}"),
                    address: Ipv4Addr::new(10, 214, subnet, 10 + i as u8),
                })
                .collect(),
            claim: Some(claim),
        };
        // Whatever carries these names now is a leftover of a run that
        // died: a live one would hold the claim.
        remove_lan(subnet);
        lan.build();
        lan
    }

    fn switch(&self) -> String {
        format!("{PREFIX}{}", self.subnet)
    }

    /// The veth end in the root namespace; its peer is a bridge port.
    pub fn uplink(&self) -> String {
        format!("{PREFIX}{}", self.subnet)
    }

    fn build(&self) {
        let switch = self.switch();
        let uplink = self.uplink();
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "set", "lo", "up"]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        ip(&[
            "link", "add", &uplink, "type", "veth", "peer", "name", "uplink", "netns", &switch,
        ]);
        ip(&["-n", &switch, "link", "set", "uplink", "master", "br0"]);
        ip(&["-n", &switch, "link", "set", "uplink", "up"]);
        let root = format!("{}/24", self.root_address());
        ip(&["addr", "add", &root, "dev", &uplink]);
        ip(&["link", "set", &uplink, "up"]);

        let names = self.hosts_file();
        for host in &self.hosts {
            ip(&["netns", "add", &host.ns]);
            ip(&[
                "-n", &switch, "link", "add", &host.port, "type", "veth", "peer", "name", "eth0",
                "netns", &host.ns,
            ]);
            ip(&["-n", &switch, "link", "set", &host.port, "master", "br0"]);
            ip(&["-n", &switch, "link", "set", &host.port, "up"]);
            ip(&["-n", &host.ns, "link", "set", "lo", "up"]);
            let address = format!("{}/24", host.address);
            ip(&["-n", &host.ns, "addr", "add", &address, "dev", "eth0"]);
            ip(&["-n", &host.ns, "link", "set", "eth0", "up"]);
            write_netns_file(&host.ns, "hosts", &names);
        }
    }

    /// The `/etc/hosts` every host sees: `localhost` (the file replaces
    /// the real one) and every host by full and short name.
    fn hosts_file(&self) -> String {
        let mut text = String::from("127.0.0.1 localhost\n::1 localhost ip6-localhost\n");
        for host in &self.hosts {
            text += &format!("{} {}.{DOMAIN} {}\n", host.address, host.name, host.name);
        }
        text
    }

    fn host(&self, name: &str) -> &LanHost {
        self.hosts
            .iter()
            .find(|h| h.name == name)
            .unwrap_or_else(|| panic!("no host {name:?} on this Lan"))
    }

    /// The namespace a host runs in.
    pub fn ns(&self, host: &str) -> &str {
        &self.host(host).ns
    }

    /// The namespaces of this Lan, the switch's last.
    pub fn all_namespaces(&self) -> Vec<String> {
        let mut all: Vec<String> = self.hosts.iter().map(|h| h.ns.clone()).collect();
        all.push(self.switch());
        all
    }

    pub fn address(&self, host: &str) -> Ipv4Addr {
        self.host(host).address
    }

    /// The name the other hosts know `host` by.
    pub fn dns(&self, host: &str) -> String {
        format!("{}.{DOMAIN}", self.host(host).name)
    }

    /// This (the test's) end of the Lan.
    pub fn root_address(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 214, self.subnet, 1)
    }

    /// `program` run on `host` as root; the Lan's names resolve there.
    pub fn command(&self, host: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", self.ns(host), program]);
        command
    }

    /// `program` run on `host` as `user`, from `/` (a folder every account
    /// may enter; runuser keeps the caller's).
    pub fn as_user(&self, host: &str, user: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args([
            "netns",
            "exec",
            self.ns(host),
            "runuser",
            "-u",
            user,
            "--",
            program,
        ]);
        command.current_dir("/");
        command
    }

    pub fn tokio_command(&self, host: &str, program: &str) -> tokio::process::Command {
        self.command(host, program).into()
    }

    pub fn tokio_as_user(&self, host: &str, user: &str, program: &str) -> tokio::process::Command {
        self.as_user(host, user, program).into()
    }

    /// Pulls (`false`) or plugs back (`true`) the host's cable at the
    /// switch: the host's own `eth0` stays up and notices nothing.
    pub fn link(&self, host: &str, up: bool) {
        let port = &self.host(host).port;
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.switch(), "link", "set", port, state]);
    }

    /// Makes the host drop every IP packet in and out (`true`) or stop
    /// (`false`): a dead host behind a router, whose peers wait for
    /// answers that never come. ARP is still answered, and the host still
    /// talks to itself over `lo`.
    pub fn blackhole(&self, host: &str, on: bool) {
        let table = format!("inet {BLACKHOLE_TABLE}");
        let mut script = format!("table {table}\ndelete table {table}\n");
        if on {
            script += &format!(
                "table {table} {{\n\
                 chain input {{ type filter hook input priority 0; policy drop; iifname \"lo\" accept; }}\n\
                 chain output {{ type filter hook output priority 0; policy drop; oifname \"lo\" accept; }}\n\
                 }}\n"
            );
        }
        self.nft(host, &script);
    }

    /// Drops `percent` of the packets the host sends out of `eth0`, at
    /// random; 0 stops it. The kernel drops them, so TCP retransmits as it
    /// would on a lossy path.
    pub fn loss(&self, host: &str, percent: u8) {
        assert!(percent <= 100, "loss of {percent} %");
        let table = format!("inet {LOSS_TABLE}");
        let mut script = format!("table {table}\ndelete table {table}\n");
        if percent > 0 {
            script += &format!(
                "table {table} {{\n\
                 chain egress {{ type filter hook output priority 0; \
                 oifname \"eth0\" counter; \
                 oifname \"eth0\" numgen random mod 100 < {percent} counter drop; }}\n\
                 }}\n"
            );
        }
        self.nft(host, &script);
    }

    /// Packets the host sent out of `eth0` since `loss` was last set, and
    /// how many of them were dropped: proof a test's loss happened.
    pub fn loss_counts(&self, host: &str) -> (u64, u64) {
        let out = self
            .command(host, "nft")
            .args(["list", "table", "inet", LOSS_TABLE])
            .output()
            .expect("run nft");
        assert!(out.status.success(), "no loss is set on {host}");
        let text = String::from_utf8_lossy(&out.stdout);
        let packets: Vec<u64> = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|pair| pair[0] == "packets")
            .map(|pair| pair[1].parse().expect("a packet count"))
            .collect();
        assert_eq!(packets.len(), 2, "{text}");
        (packets[0], packets[1])
    }

    /// Sends connections other hosts make to `port` on `host` to
    /// `to_port` there instead (`Some`), or stops (`None`): with a delay
    /// proxy on `to_port` in front of the real server, every peer sees a
    /// slow link while the host itself still reaches its own server.
    pub fn redirect(&self, host: &str, port: u16, to_port: Option<u16>) {
        let table = format!("ip {REDIRECT_TABLE}");
        let mut script = format!("table {table}\ndelete table {table}\n");
        if let Some(to) = to_port {
            script += &format!(
                "table {table} {{\n\
                 chain prerouting {{ type nat hook prerouting priority dstnat; \
                 iifname \"eth0\" tcp dport {port} redirect to :{to}; }}\n\
                 }}\n"
            );
        }
        self.nft(host, &script);
    }

    fn nft(&self, host: &str, script: &str) {
        use std::io::Write;
        let mut child = self
            .command(host, "nft")
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run nft (Debian package nftables)");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "nft on {host}: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `work` on a thread of its own inside the host's namespace:
    /// sockets it opens are the host's. Only `ip netns exec` lays the
    /// Lan's hosts file over `/etc/hosts`, so the thread must use
    /// addresses, not names. Join it before the Lan drops, or the thread
    /// keeps the namespace (and its links) alive.
    pub fn spawn_in<T: Send + 'static>(
        &self,
        host: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> JoinHandle<T> {
        let path = PathBuf::from(NETNS_RUN).join(self.ns(host));
        std::thread::Builder::new()
            .name(format!("netns-{host}"))
            .spawn(move || {
                enter_namespace(&path);
                work()
            })
            .expect("spawn a thread")
    }

    /// A TCP proxy on the host: connections to `listen_port` of the host's
    /// address go on to `target_port` there, and everything the target
    /// sends back is held `delay` before it is passed on, like a slow
    /// link out of the host. Chunks travel a delay line, so a stream is
    /// late by `delay` once, not once per chunk. Port 0 takes a free port.
    pub fn delay_proxy(
        &self,
        host: &str,
        listen_port: u16,
        target_port: u16,
        delay: Duration,
    ) -> DelayProxy<'_> {
        let address = self.address(host);
        let listen = SocketAddr::V4(SocketAddrV4::new(address, listen_port));
        let target = SocketAddr::V4(SocketAddrV4::new(address, target_port));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let relayed = Arc::new(AtomicU64::new(0));
        let counted = relayed.clone();
        let thread = self.spawn_in(host, move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the delay proxy");
            runtime.block_on(async move {
                let listener = match TcpListener::bind(listen).await {
                    Ok(listener) => listener,
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("listening on {listen}: {e}")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(listener.local_addr().unwrap()));
                tokio::select! {
                    _ = stop_rx => {}
                    _ = accept_loop(listener, target, delay, counted) => {}
                }
            });
            // Dropping the runtime ends every connection still open.
        });
        let address = match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(Ok(address)) => address,
            Ok(Err(e)) => panic!("delay proxy on {host}: {e}"),
            Err(e) => panic!("delay proxy on {host} did not start: {e}"),
        };
        DelayProxy {
            address,
            relayed,
            stop: Some(stop_tx),
            thread: Some(thread),
            _lan: PhantomData,
        }
    }
}

impl Lan {
    /// Lets go of the Lan as a process that dies would: everything stays
    /// in place, only the claim is released. For testing the cleanup.
    pub fn abandon(mut self) {
        self.claim = None;
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        if self.claim.is_some() {
            remove_lan(self.subnet);
        }
    }
}

/// Ends every process in the namespaces of the Lan on `subnet`, removes
/// them, their `/etc/netns` folders and the root namespace's port, and
/// waits until the port is really gone. The caller holds the claim.
fn remove_lan(subnet: u8) {
    let switch = format!("{PREFIX}{subnet}");
    let ours = |name: &str| subnet_of(name) == Some(subnet);
    let mut found: Vec<String> = namespaces().into_iter().filter(|ns| ours(ns)).collect();
    // Hosts before the switch, so no port outlives its bridge.
    found.sort_by_key(|ns| *ns == switch);
    for ns in &found {
        kill_everything_in(ns);
    }
    for ns in &found {
        ip_quiet(&["netns", "del", ns]);
    }
    // The root's port shares the switch's name.
    ip_quiet(&["link", "del", &switch]);
    if let Ok(entries) = std::fs::read_dir(NETNS_ETC) {
        for entry in entries.flatten() {
            if ours(&entry.file_name().to_string_lossy()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    // Only when no other Lan uses it; a Lan writing into it retries.
    let _ = std::fs::remove_dir(NETNS_ETC);
    let deadline = Instant::now() + Duration::from_secs(5);
    while root_link_exists(&switch) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `/etc/netns/<ns>/<file>`, retrying when another Lan removed the
/// then empty `/etc/netns` under it.
fn write_netns_file(ns: &str, file: &str, text: &str) {
    let dir = PathBuf::from(NETNS_ETC).join(ns);
    let mut attempts = 0;
    loop {
        let written =
            std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(dir.join(file), text));
        match written {
            Ok(()) => return,
            Err(e) if e.kind() == ErrorKind::NotFound && attempts < 5 => attempts += 1,
            Err(e) => panic!("writing {}: {e}", dir.join(file).display()),
        }
    }
}

/// SIGKILLs every process in `ns` until none is left, for at most 5 s.
fn kill_everything_in(ns: &str) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let out = Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .expect("run ip netns pids");
        let me = std::process::id() as i32;
        let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|&p| p != me && p > 1)
            .collect();
        if pids.is_empty() || Instant::now() > deadline {
            return;
        }
        for pid in pids {
            // SAFETY: kill has no memory effects; the pid is a process in
            // a namespace only this Lan uses.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Moves the calling thread into the network namespace at `path`.
fn enter_namespace(path: &std::path::Path) {
    let file = File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    // SAFETY: the descriptor is open for the duration of the call; setns
    // changes only this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "entering {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// A running delay proxy; it stops, closing its connections, when dropped,
/// which the borrow of its Lan makes happen before the Lan is removed.
pub struct DelayProxy<'lan> {
    address: SocketAddr,
    relayed: Arc<AtomicU64>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _lan: PhantomData<&'lan Lan>,
}

impl DelayProxy<'_> {
    /// Where the proxy listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Bytes the target sent back through the proxy so far.
    pub fn relayed(&self) -> u64 {
        self.relayed.load(Ordering::Relaxed)
    }
}

impl Drop for DelayProxy<'_> {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    delay: Duration,
    relayed: Arc<AtomicU64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Out of descriptors, say: give the connections time to end.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(relay(client, target, delay, relayed.clone()));
    }
}

/// One connection: the client's bytes go on at once, the target's come
/// back `delay` late.
async fn relay(client: TcpStream, target: SocketAddr, delay: Duration, relayed: Arc<AtomicU64>) {
    let Ok(upstream) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let (mut client_read, client_write) = client.into_split();
    let (upstream_read, mut upstream_write) = upstream.into_split();
    let forward = async move {
        let _ = tokio::io::copy(&mut client_read, &mut upstream_write).await;
        let _ = upstream_write.shutdown().await;
    };
    tokio::join!(
        forward,
        delay_line(upstream_read, client_write, delay, relayed)
    );
}

/// Copies `from` to `to`, each chunk written `delay` after it was read;
/// the end of the stream is held as long.
async fn delay_line(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    relayed: Arc<AtomicU64>,
) {
    let (line_in, mut line_out) =
        tokio::sync::mpsc::channel::<(tokio::time::Instant, Vec<u8>)>(256);
    let read = async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // A read error ends the stream as an end of file would.
            let n = from.read(&mut buffer).await.unwrap_or(0);
            relayed.fetch_add(n as u64, Ordering::Relaxed);
            let due = tokio::time::Instant::now() + delay;
            if line_in.send((due, buffer[..n].to_vec())).await.is_err() || n == 0 {
                return;
            }
        }
    };
    let write = async move {
        while let Some((due, chunk)) = line_out.recv().await {
            tokio::time::sleep_until(due).await;
            if chunk.is_empty() {
                let _ = to.shutdown().await;
                return;
            }
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
    };
    tokio::join!(read, write);
}
