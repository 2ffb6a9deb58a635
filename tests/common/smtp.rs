//! A real SMTP server for tests (mailin-embedded, over TCP on 127.0.0.1).
//! It can stay down (nothing listens), answer 4xx or 5xx on purpose, and
//! records every message it accepted.
#![allow(dead_code)]

use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{Handler, Response, Server, response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Accept,
    /// 451 at MAIL FROM: try again later.
    TemporaryFailure,
    /// 550 at RCPT TO: no such mailbox.
    PermanentFailure,
    /// Accepts, taking this many milliseconds to answer the end of DATA.
    Slow(u64),
}

#[derive(Debug, Clone)]
pub struct Received {
    pub to: Vec<String>,
    pub data: String,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<String> {
        let prefix = format!("{}:", name.to_lowercase());
        let mut lines = self.data.split("\r\n").peekable();
        while let Some(line) = lines.next() {
            if line.is_empty() {
                return None;
            }
            if line.to_lowercase().starts_with(&prefix) {
                let mut value = line[prefix.len()..].trim().to_string();
                // Folded continuation lines.
                while let Some(next) = lines.peek() {
                    if next.starts_with(' ') || next.starts_with('\t') {
                        value.push(' ');
                        value.push_str(next.trim());
                        lines.next();
                    } else {
                        break;
                    }
                }
                return Some(value);
            }
        }
        None
    }

    pub fn message_id(&self) -> String {
        self.header("Message-ID").unwrap_or_default()
    }
}

#[derive(Default)]
struct State {
    mode: Option<Mode>,
    received: Vec<Received>,
}

#[derive(Clone)]
struct Session {
    shared: Arc<Mutex<State>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Session {
    fn mode(&self) -> Mode {
        self.shared.lock().unwrap().mode.unwrap_or(Mode::Accept)
    }
}

impl Handler for Session {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        self.to.clear();
        self.data.clear();
        match self.mode() {
            Mode::TemporaryFailure => Response::custom(451, "Try again later".into()),
            _ => response::OK,
        }
    }

    fn rcpt(&mut self, to: &str) -> Response {
        match self.mode() {
            Mode::PermanentFailure => response::NO_MAILBOX,
            _ => {
                self.to.push(to.to_string());
                response::OK
            }
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        if let Mode::Slow(ms) = self.mode() {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let received = Received {
            to: self.to.clone(),
            data: String::from_utf8_lossy(&self.data).into_owned(),
        };
        self.shared.lock().unwrap().received.push(received);
        response::OK
    }
}

pub struct TestSmtp {
    pub port: u16,
    shared: Arc<Mutex<State>>,
    started: Mutex<bool>,
}

impl TestSmtp {
    /// Picks a port; nothing listens on it until `start`.
    pub fn reserve() -> TestSmtp {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        TestSmtp {
            port,
            shared: Arc::new(Mutex::new(State::default())),
            started: Mutex::new(false),
        }
    }

    pub fn started() -> TestSmtp {
        let smtp = TestSmtp::reserve();
        smtp.start();
        smtp
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn start(&self) {
        let mut started = self.started.lock().unwrap();
        if *started {
            return;
        }
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("SMTP port");
        let session = Session {
            shared: self.shared.clone(),
            to: Vec::new(),
            data: Vec::new(),
        };
        std::thread::spawn(move || {
            let mut server = Server::new(session);
            // The relay sends several at once and its pool keeps idle
            // connections open: more threads than it has connections.
            server
                .with_name("smtp.test")
                .with_num_threads(32)
                .with_tcp_listener(listener);
            let _ = server.serve();
        });
        *started = true;
    }

    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().unwrap().mode = Some(mode);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }
}

/// A mail server that accepts connections and never says a word: no
/// greeting, no answers. Connections are held until `stop`.
pub struct Tarpit {
    pub port: u16,
    stop: tokio_util::sync::CancellationToken,
    held: Arc<Mutex<usize>>,
}

impl Tarpit {
    /// Listens on `port` (another server's, to stand in for it).
    pub async fn start(port: u16) -> Tarpit {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("tarpit port");
        let stop = tokio_util::sync::CancellationToken::new();
        let held = Arc::new(Mutex::new(0));
        let (until, count) = (stop.clone(), held.clone());
        tokio::spawn(async move {
            let mut sockets = Vec::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        if let Ok((socket, _)) = accepted {
                            sockets.push(socket);
                            *count.lock().unwrap() += 1;
                        }
                    }
                    _ = until.cancelled() => return,
                }
            }
        });
        Tarpit { port, stop, held }
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        *self.held.lock().unwrap()
    }

    /// Closes the listener and every held connection.
    pub async fn stop(self) {
        self.stop.cancel();
        // Let the task drop its listener before someone binds the port.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
