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

both_databases!(replay_progress_rises_to_the_target_and_never_falls);
