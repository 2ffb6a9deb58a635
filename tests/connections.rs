//! Slow, silent and too many clients against the real binary: the desk
//! raises its own open-file limit, closes connections that send nothing or
//! trickle their headers, serves no more than its connection limit at once,
//! and keeps answering everyone else.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_restore-desk");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Running {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn set_soft_open_files(limit: u64) -> std::io::Result<()> {
    // SAFETY: rlimit is plain data; the calls read and write only it.
    unsafe {
        let mut current: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut current) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        current.rlim_cur = limit.min(current.rlim_max);
        if libc::setrlimit(libc::RLIMIT_NOFILE, &current) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `restore-desk demo` started the way a service manager with the usual
/// small default (1024 open files) would start it.
async fn desk(env: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut command = Command::new(BIN);
    command
        .arg("demo")
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "DATABASE_URL",
            format!("sqlite://{}", dir.path().join("desk.db").display()),
        )
        .env("MAIL_DIR", dir.path().join("mail"))
        .env("DRILL_INTERVAL_HOURS", "0")
        .env("BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    for (key, value) in env {
        command.env(key, value);
    }
    // SAFETY: between fork and exec only async-signal-safe calls run:
    // getrlimit and setrlimit.
    unsafe {
        command.pre_exec(|| set_soft_open_files(1024));
    }
    let child = command.spawn().unwrap();
    let running = Running {
        child,
        port,
        _dir: dir,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(Ok(r)) = tokio::time::timeout(
            Duration::from_secs(2),
            reqwest::get(format!("http://127.0.0.1:{port}/healthz")),
        )
        .await
            && r.status() == 200
        {
            return running;
        }
        assert!(Instant::now() < deadline, "the desk did not come up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn healthz_within(port: u16, limit: Duration) -> Result<u16, String> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    match tokio::time::timeout(
        limit,
        client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send(),
    )
    .await
    {
        Ok(Ok(response)) => Ok(response.status().as_u16()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// Waits for the server to close `stream`: a read that ends (0 bytes or a
/// reset), or `None` if it is still open after `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(
            limit.saturating_sub(started.elapsed()),
            stream.read(&mut buf),
        )
        .await
        {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            // A 408 or an error page before closing is fine: keep reading.
            Ok(Ok(_)) => {}
        }
    }
}

fn open_file_limits(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .to_string();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

fn sockets_of(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

#[tokio::test]
async fn two_thousand_silent_connections_neither_starve_the_desk_nor_stay_open() {
    set_soft_open_files(u64::MAX).unwrap();
    let desk = desk(&[("HEADER_READ_TIMEOUT_SECONDS", "3")]).await;
    let (soft, hard) = open_file_limits(desk.child.id());
    assert_eq!(soft, hard, "the desk raises its own open-file limit");

    let mut silent = Vec::new();
    for _ in 0..2000 {
        let stream = TcpStream::connect(("127.0.0.1", desk.port)).await.unwrap();
        silent.push((stream, Instant::now()));
    }
    assert_eq!(
        healthz_within(desk.port, Duration::from_secs(5)).await,
        Ok(200),
        "/healthz answers beside 2,000 silent connections"
    );
    // They send nothing: each is closed once the header timeout passes,
    // and not before.
    for (stream, opened) in silent.iter_mut().step_by(40) {
        let closed = closed_within(stream, Duration::from_secs(15)).await;
        assert!(
            closed.is_some(),
            "a silent connection was still open after 15 s"
        );
        let lived = opened.elapsed();
        assert!(
            lived >= Duration::from_secs(2),
            "closed after only {lived:?}"
        );
    }
    assert_eq!(
        healthz_within(desk.port, Duration::from_secs(5)).await,
        Ok(200)
    );
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off() {
    let desk = desk(&[("HEADER_READ_TIMEOUT_SECONDS", "2")]).await;
    let mut slow = TcpStream::connect(("127.0.0.1", desk.port)).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    // A byte every 300 ms: never a whole header. The desk hangs up.
    let started = Instant::now();
    let mut cut_off = None;
    let mut buf = [0u8; 256];
    while started.elapsed() < Duration::from_secs(15) {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let wrote = slow.write_all(b"X").await;
        let closed = matches!(
            tokio::time::timeout(Duration::from_millis(1), slow.read(&mut buf)).await,
            Ok(Ok(0)) | Ok(Err(_))
        );
        if wrote.is_err() || closed {
            cut_off = Some(started.elapsed());
            break;
        }
    }
    let cut_off = cut_off.expect("a trickling client was never cut off");
    assert!(
        cut_off < Duration::from_secs(8),
        "cut off only after {cut_off:?}"
    );
    // A well-behaved client on a new connection is served.
    let mut fresh = TcpStream::connect(("127.0.0.1", desk.port)).await.unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    fresh.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn no_more_than_the_connection_limit_are_served_at_once() {
    let desk = desk(&[
        ("HEADER_READ_TIMEOUT_SECONDS", "2"),
        ("MAX_CONNECTIONS", "20"),
    ])
    .await;
    let pid = desk.child.id();
    let before = sockets_of(pid);
    let mut silent = Vec::new();
    for _ in 0..60 {
        silent.push(TcpStream::connect(("127.0.0.1", desk.port)).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let held = sockets_of(pid) - before;
    assert!(
        held <= 20,
        "the desk holds {held} client connections; its limit is 20"
    );
    // The ones waiting are served as the silent ones time out.
    assert_eq!(
        healthz_within(desk.port, Duration::from_secs(12)).await,
        Ok(200)
    );
}
