//! Email figure: from the commit that writes an email to the outbox until a
//! local SMTP server answers 250 for it, through the relay; against sending
//! the same message straight to the same server with lettre.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::support::{BenchDb, Db, Figure, Target, desk, percentile, quick};
use restore_desk::notify::relay::{self, DeliveryPolicy, Relay};
use restore_desk::store::{Commit, NewOutboxMessage, OutboxMessage, OutboxStatus};

/// When each Message-ID was accepted, and a bell rung at every arrival.
#[derive(Clone, Default)]
struct Arrivals {
    seen: Arc<Mutex<HashMap<String, Instant>>>,
    bell: Arc<tokio::sync::Notify>,
}

/// A minimal SMTP sink: it answers every command at once and acknowledges
/// every segment immediately, so the figure measures the desk and not a
/// 40 ms delayed-ACK stall (lettre writes small segments with Nagle on),
/// which would hide both sides' costs.
async fn smtp_server() -> (u16, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let arrivals = Arrivals::default();
    let shared = arrivals.clone();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            socket.set_nodelay(true).unwrap();
            tokio::spawn(session(socket, shared.clone()));
        }
    });
    (port, arrivals)
}

async fn session(socket: tokio::net::TcpStream, arrivals: Arrivals) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    let _ = write.write_all(b"220 bench ESMTP\r\n").await;
    let mut in_data = false;
    let mut message_id = String::new();
    loop {
        // Acknowledge at once: the client's small writes would otherwise
        // wait out a 40 ms delayed ACK under Nagle's algorithm.
        let _ = socket2::SockRef::from(lines.get_ref().get_ref().as_ref()).set_tcp_quickack(true);
        let Ok(Some(line)) = lines.next_line().await else {
            return;
        };
        if in_data {
            if line == "." {
                in_data = false;
                arrivals
                    .seen
                    .lock()
                    .unwrap()
                    .insert(message_id.clone(), Instant::now());
                arrivals.bell.notify_waiters();
                let _ = write.write_all(b"250 OK queued\r\n").await;
            } else if line.to_lowercase().starts_with("message-id:") {
                message_id = line["message-id:".len()..].trim().to_string();
            }
            continue;
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" => b"250-bench\r\n250 8BITMIME\r\n",
            "DATA" => {
                in_data = true;
                message_id.clear();
                b"354 go ahead\r\n"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => b"250 OK\r\n",
        };
        if write.write_all(reply).await.is_err() {
            return;
        }
    }
}

async fn arrived(arrivals: &Arrivals, id: &str) -> Instant {
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    loop {
        let rung = arrivals.bell.notified();
        if let Some(at) = arrivals.seen.lock().unwrap().get(id) {
            return *at;
        }
        tokio::time::timeout_at(deadline, rung)
            .await
            .expect("email never arrived");
    }
}

fn row(i: usize) -> NewOutboxMessage {
    NewOutboxMessage {
        id: Uuid::new_v4(),
        dedupe_key: format!("bench:{i}"),
        ticket_id: None,
        kind: "bench".into(),
        recipient: "alice@contoso.example".into(),
        subject: format!("[RD-{i:06}] Restore complete"),
        text_body: "Hello Alice,\n\nThe restore is complete.\n".repeat(10),
        html_body: "<p>Hello Alice,</p><p>The restore is complete.</p>".repeat(10),
        endpoint_id: None,
    }
}

pub async fn run() -> Vec<Figure> {
    let samples = if quick() { 40 } else { 200 };
    let (port, arrivals) = smtp_server().await;
    let url = format!("smtp://127.0.0.1:{port}");
    let bench_db = BenchDb::new(Db::Sqlite).await;
    let app = desk(&bench_db, &["--smtp-url", &url]).await;
    let shutdown = CancellationToken::new();
    let relay = Relay::new(app.clone(), app.mailer.clone(), DeliveryPolicy::default()).unwrap();
    let (sender, receiver) = relay::hand_off();
    app.local_relay.set(sender).expect("one relay");
    let running = tokio::spawn(relay::run(relay, Some(receiver), shutdown.clone()));

    let mut ours = Vec::new();
    for i in 0..samples {
        let message = row(i);
        let id = format!("<{}@restore-desk.localhost>", message.id);
        let mut commit = Commit::at(Utc::now());
        commit.outbox.push(message);
        app.commit(commit).await.unwrap();
        // The email is in the outbox from here on.
        let started = Instant::now();
        let at = arrived(&arrivals, &id).await;
        ours.push((at - started).as_secs_f64() * 1000.0);
    }
    shutdown.cancel();
    running.await.unwrap();

    // The same messages, straight to the server.
    let direct = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)
        .unwrap()
        .build();
    let builder = Relay::new(app.clone(), app.mailer.clone(), DeliveryPolicy::default()).unwrap();
    let mut baseline = Vec::new();
    for i in 0..samples {
        let new = row(samples + i);
        let stored = OutboxMessage {
            id: new.id,
            dedupe_key: new.dedupe_key,
            ticket_id: None,
            kind: new.kind,
            recipient: new.recipient,
            subject: new.subject,
            text_body: new.text_body,
            html_body: new.html_body,
            endpoint_id: None,
            status: OutboxStatus::Pending,
            attempts: 1,
            claim: 1,
            next_attempt_at: Utc::now(),
            claimed_until: None,
            last_error: None,
            created_at: Utc::now(),
            sent_at: None,
        };
        let id = format!("<{}@restore-desk.localhost>", stored.id);
        let started = Instant::now();
        let email = builder.email(&stored).unwrap();
        direct.send(email).await.unwrap();
        let at = arrived(&arrivals, &id).await;
        baseline.push((at - started).as_secs_f64() * 1000.0);
    }
    bench_db.drop_now().await;
    let (ours_p50, base_p50) = (percentile(&mut ours, 50.0), percentile(&mut baseline, 50.0));
    println!("mail: p50 ours {ours_p50:.3} ms, direct {base_p50:.3} ms");
    vec![Figure::new(
        "mail: outbox -> SMTP 250 p95 (SQLite)",
        percentile(&mut ours, 95.0),
        percentile(&mut baseline, 95.0),
        "ms",
        Target::AtMost(2.0),
    )]
}
