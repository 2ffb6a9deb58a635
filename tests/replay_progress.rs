//! Progress measured against the target: while the log is replayed the job
//! reports the commit time reached, which rises towards the target and
//! never falls; the bar never goes back and reaches 100 % only once the
//! copy was verified. The customer's page says how far the replay got, in
//! their words and zone. Both stores.

mod common;

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::json;

use common::web::{Api, spawn_app_on};
use restore_desk::domain::restore_job::JobState;

async fn replay_progress_rises_to_the_target_and_never_falls(db: common::TestDb) {
    let mut t = spawn_app_on(db, &[], |s| s.sandbox_step_ms = 2500).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    let id = t
        .file_request(&alice, "orders-prod", "orders-replayed")
        .await;
    t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
        .await;
    t.start_engine();
    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;

    let mut samples: Vec<(JobState, i64, Option<DateTime<Utc>>)> = Vec::new();
    let mut page_said = None;
    let started = Instant::now();
    let job = loop {
        let job = t
            .app
            .store
            .job_for_ticket(id.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        samples.push((job.state, job.progress, job.replayed_to));
        if job.state == JobState::ReplayingLog && job.replayed_to.is_some() && page_said.is_none() {
            let html = page.page(&format!("/tickets/{id}")).await;
            if let Some(at) = html.find("Replayed up to ") {
                page_said = Some(html[at..at + 80].to_string());
            }
        }
        if job.state.is_terminal() {
            break job;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{job:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);

    let replay: Vec<DateTime<Utc>> = samples
        .iter()
        .filter(|(state, _, _)| *state == JobState::ReplayingLog)
        .filter_map(|(_, _, at)| *at)
        .collect();
    assert!(replay.len() >= 3, "the replay was watched: {samples:?}");
    assert!(
        replay.windows(2).all(|w| w[0] <= w[1]),
        "it never falls: {replay:?}"
    );
    assert!(replay.first() < replay.last(), "it rises: {replay:?}");
    assert!(
        replay.iter().all(|at| *at <= job.target_time),
        "never past the target: {replay:?}"
    );
    let snapshot_end = job.snapshot_finished_at.unwrap();
    assert!(replay.iter().all(|at| *at >= snapshot_end));
    // The bar: never back, and 100 % only once verified.
    let bar: Vec<i64> = samples.iter().map(|(_, p, _)| *p).collect();
    assert!(bar.windows(2).all(|w| w[0] <= w[1]), "{samples:?}");
    assert!(
        samples
            .iter()
            .all(|(state, p, _)| *p < 100
                || matches!(state, JobState::Finalizing | JobState::Succeeded)),
        "{samples:?}"
    );
    let said = page_said.expect("the page said how far the replay got");
    assert!(said.contains(" of "), "{said}");
    assert!(said.contains("CET") || said.contains("UTC"), "{said}");
    // Once done, the job no longer claims to be replaying.
    let (_, api) = alice.get(&format!("/api/v1/jobs/{}", job.id)).await;
    assert!(api.get("replayed_to").is_some(), "{api}");
}

/// The first restore of a cluster has no estimate yet and says so; the
/// second says when it should be done, from the first, in its page, its
/// API and its "started" email — and is done within a factor of two of it.
async fn a_restore_says_when_it_should_be_done(db: common::TestDb) {
    let mut t = spawn_app_on(db, &[], |s| s.sandbox_step_ms = 400).await;
    let alice = Api::signed_in(&t.base, "alice@contoso.example").await;
    t.start_engine();
    let mut page = t.browser();
    page.sign_in("alice@contoso.example").await;
    let run = |name: &'static str| {
        let (t, alice) = (&t, &alice);
        async move {
            let id = t.file_request(alice, "orders-prod", name).await;
            t.staff_acts(&id, &[("claim", json!({})), ("approve", json!({}))])
                .await;
            id
        }
    };
    let wait_done = |id: String| {
        let t = &t;
        async move {
            let started = Instant::now();
            loop {
                let job = t
                    .app
                    .store
                    .job_for_ticket(id.parse().unwrap())
                    .await
                    .unwrap()
                    .unwrap();
                if job.state.is_terminal() {
                    assert_eq!(job.state, JobState::Succeeded, "{:?}", job.last_error);
                    return job;
                }
                assert!(started.elapsed() < Duration::from_secs(60));
                // The desk's clock runs at twenty times real time here, so
                // that restores take measurable time by it.
                t.clock.advance(chrono::Duration::seconds(1));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let first = run("orders-first-eta").await;
    let html = page.page(&format!("/tickets/{first}")).await;
    assert!(html.contains("No estimate yet"), "{html}");
    let job = wait_done(first.clone()).await;
    let mail = |id: String| {
        let t = &t;
        async move {
            t.app
                .store
                .outbox(&restore_desk::store::OutboxQuery {
                    status: None,
                    ticket_id: Some(id.parse().unwrap()),
                    limit: 50,
                })
                .await
                .unwrap()
                .into_iter()
                .find(|m| m.kind == "restore_started")
                .expect("the started email")
        }
    };
    assert!(
        mail(first.clone())
            .await
            .text_body
            .contains("no estimate of when it will be done yet")
    );
    let took =
        job.finished_at.unwrap() - t.app.store.job_started_at(job.id).await.unwrap().unwrap();

    let second = run("orders-second-eta").await;
    let job2 = t
        .app
        .store
        .job_for_ticket(second.parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    let (_, api) = alice.get(&format!("/api/v1/jobs/{}", job2.id)).await;
    assert_eq!(
        api["eta"]["basis"].as_str().unwrap(),
        format!(
            "from 1 restore of this cluster, median {}",
            restore_desk::domain::eta::words(took)
        ),
        "{api}"
    );
    let html = page.page(&format!("/tickets/{second}")).await;
    assert!(html.contains("Should be done by "), "{html}");
    let job2 = wait_done(second.clone()).await;
    assert!(
        mail(second)
            .await
            .text_body
            .contains("It should be done by "),
        "the started email says when"
    );
    let took2 =
        job2.finished_at.unwrap() - t.app.store.job_started_at(job2.id).await.unwrap().unwrap();
    let ratio = took2.num_milliseconds() as f64 / took.num_milliseconds().max(1) as f64;
    assert!(
        (0.5..=2.0).contains(&ratio),
        "estimate {took}, took {took2}"
    );
    let (_, done) = alice.get(&format!("/api/v1/jobs/{}", job2.id)).await;
    assert!(done["eta"].is_null(), "no estimate once it rests: {done}");

    // A third one hangs on a slow host: past three times its estimate the
    // watchdog counts it, and staff and the API say so.
    let ada = Api::signed_in(&t.base, "ada@admin.example").await;
    let (status, body) = ada
        .post(
            "/api/v1/faults",
            json!({"kind": "slow_step", "step": "provisioning", "delay_ms": 4000}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let third = run("orders-third-eta").await;
    let job3 = loop {
        let job = t
            .app
            .store
            .job_for_ticket(third.parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        if job.state == JobState::Provisioning {
            break job;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        restore_desk::engine::duties::watch_estimates(&t.app)
            .await
            .unwrap(),
        0,
        "not yet"
    );
    t.clock.advance(took * 4);
    let (_, api) = alice.get(&format!("/api/v1/jobs/{}", job3.id)).await;
    assert_eq!(api["eta"]["overrun"], true, "{api}");
    assert!(
        restore_desk::engine::duties::watch_estimates(&t.app)
            .await
            .unwrap()
            >= 1
    );
    let mut sam = t.browser();
    sam.sign_in("sam@support.example").await;
    let html = sam.page(&format!("/staff/tickets/{third}")).await;
    assert!(
        html.contains("Running past three times its estimate"),
        "{html}"
    );
}

both_databases!(
    replay_progress_rises_to_the_target_and_never_falls,
    a_restore_says_when_it_should_be_done,
);
