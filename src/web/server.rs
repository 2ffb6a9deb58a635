//! The HTTP server loop: accepts connections up to a limit and serves each
//! with bounds a slow or silent client cannot stretch. A request's headers
//! must arrive within `HEADER_READ_TIMEOUT_SECONDS` of the connection (or
//! of the previous response) being ready for them — which also closes idle
//! keep-alive connections — and a connection on which no byte moves for
//! `IDLE_TIMEOUT_SECONDS` is closed whatever it was doing. At the limit, the
//! loop stops accepting until a connection ends, which the bounds keep
//! short. On shutdown, requests under way get the shutdown grace to finish.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The bounds one process serves under.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_read: Duration,
    pub idle: Duration,
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

impl ConnectionLimits {
    pub fn from_settings(settings: &crate::config::Settings) -> ConnectionLimits {
        ConnectionLimits {
            header_read: Duration::from_secs(settings.header_read_timeout_seconds.max(1)),
            idle: Duration::from_secs(settings.idle_timeout_seconds.max(1)),
            max_connections: settings.max_connections(),
            shutdown_grace: Duration::from_secs(settings.shutdown_grace_seconds),
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, so
/// connections, database files and pipes are not refused at the system's
/// small default. Returns the limit now in force.
pub fn raise_open_file_limit() -> Option<u64> {
    // SAFETY: rlimit is plain data; getrlimit and setrlimit only read and
    // write the value passed.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return None;
        }
        if limit.rlim_cur < limit.rlim_max {
            let wanted = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                limit = wanted;
            }
        }
        Some(limit.rlim_cur)
    }
}

/// The soft limit on open files in force now.
pub fn open_file_limit() -> Option<u64> {
    // SAFETY: as above; getrlimit only writes into `limit`.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        (libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0).then_some(limit.rlim_cur)
    }
}

/// Milliseconds since `epoch` at which a byte last moved.
struct Activity {
    epoch: Instant,
    last: AtomicU64,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        self.last.store(now, Ordering::Relaxed);
    }

    fn quiet_for(&self) -> Duration {
        let now = self.epoch.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last.load(Ordering::Relaxed)))
    }
}

/// A socket that notes when bytes move through it.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// Serves one connection until it ends, goes quiet, or the server stops.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ConnectionLimits,
    stopping: CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let activity = Activity::new();
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = router.map_request(move |request: hyper::Request<hyper::body::Incoming>| {
        let mut request = request.map(axum::body::Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read)
        .keep_alive(true);
    let served = http.serve_connection(io, TowerToHyperService::new(service));
    tokio::pin!(served);
    let check = (limits.idle / 4).max(Duration::from_millis(100));
    let mut closing = false;
    loop {
        tokio::select! {
            _ = served.as_mut() => return,
            _ = stopping.cancelled(), if !closing => {
                // Finish the request under way, take no new one.
                served.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(check) => {
                if activity.quiet_for() >= limits.idle {
                    if closing {
                        // Asked to close and still stuck: drop it.
                        return;
                    }
                    served.as_mut().graceful_shutdown();
                    closing = true;
                    activity.touch();
                }
            }
        }
    }
}

/// Whether an accept error concerns one connection only (it went away
/// before it was accepted) rather than the listener.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Accepts and serves until `shutdown` fires; then gives open connections
/// the shutdown grace to finish and closes the rest.
pub async fn run(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut open = JoinSet::new();
    let mut full_since: Option<Instant> = None;
    loop {
        while open.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => {
                full_since = None;
                slot
            }
            Err(_) => {
                if full_since.is_none() {
                    full_since = Some(Instant::now());
                    tracing::warn!(
                        limit = limits.max_connections,
                        "connection limit reached: new connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => slot.map_err(io::Error::other)?,
                    _ = shutdown.cancelled() => break,
                }
            }
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = shutdown.cancelled() => break,
        };
        match accepted {
            Ok((stream, peer)) => {
                let (router, stopping) = (router.clone(), shutdown.clone());
                open.spawn(async move {
                    connection(stream, peer, router, limits, stopping).await;
                    drop(slot);
                });
            }
            Err(error) if is_connection_error(&error) => {}
            Err(error) => {
                // Out of file descriptors, most likely: wait for some to close.
                tracing::error!(%error, "accepting a connection failed");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
    drop(listener);
    let finishing = async { while open.join_next().await.is_some() {} };
    if tokio::time::timeout(limits.shutdown_grace, finishing)
        .await
        .is_err()
    {
        tracing::warn!(
            left = open.len(),
            "connections still open after the shutdown grace: closed"
        );
        open.abort_all();
        while open.join_next().await.is_some() {}
    }
    Ok(())
}
