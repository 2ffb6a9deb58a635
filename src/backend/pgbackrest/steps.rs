//! The restore steps and the catalog, as the engine asks for them.

use super::restores::{canary_check, recovery_settings, recovery_target_of};
use super::*;
use crate::domain::transactions::{
    LogRead, LoggedTransaction, RelationFile, RelationName, TxPosition,
};

#[async_trait]
impl Backend for PgBackRestBackend {
    fn name(&self) -> &'static str {
        "pgbackrest"
    }

    async fn catalog(&self, cluster: &Cluster) -> Result<Catalog, FleetError> {
        let Some(reach) = self.reach(cluster).await? else {
            return Ok(Catalog::default());
        };
        let mut info = self.read_info(&reach).await?;
        let mut ends = self.log_ends(&reach, &info).await;
        let seen_path = self.last_seen_path(cluster);
        if let Some(dir) = seen_path.parent()
            && !dir.is_dir()
        {
            let _ = make_dir(dir, &self.user, 0o750);
        }
        let seen: BTreeMap<Zone, SeenZone> = std::fs::read_to_string(&seen_path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let now_seen = info.merge_last_seen(&seen, &mut ends);
        if now_seen != seen {
            let text = serde_json::to_string_pretty(&now_seen).expect("zones serialise");
            if let Err(error) = write_file(&seen_path, &text, &self.user, 0o640) {
                tracing::warn!(%error, "remembering what the zones hold");
            }
        }
        // No zone answers and none was seen before: that is no catalog,
        // not a cluster without backups (a stanza not created yet is).
        let silent = |r: &info::Repo| {
            !r.readable && r.backups.is_empty() && !r.status.contains("missing stanza")
        };
        if info.repos.iter().all(silent) {
            let why: Vec<String> = info.repos.iter().map(|r| r.status.clone()).collect();
            return Err(FleetError::Unreachable(format!(
                "no zone answers: {}",
                why.join("; ")
            )));
        }
        Ok(info.catalog(&ends))
    }

    async fn online_zones(&self, cluster: &Cluster) -> Result<ZoneSet, FleetError> {
        let admin = self
            .store
            .online_zones(&cluster.region)
            .await
            .map_err(FleetError::Store)?;
        let Some(reach) = self.reach(cluster).await? else {
            return Ok(ZoneSet::NONE);
        };
        Ok(admin.intersect(self.read_info(&reach).await?.readable_zones()))
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn provision(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        if cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        if job.new_cluster_id == job.source.id {
            return Err(StepError::fatal(
                "bad_job",
                "the new cluster cannot be the source cluster",
            ));
        }
        let home = self.layout.restore(job.job_id, job.run);
        if let Some(state) = Self::read_state(&home) {
            return Ok(self.connection_for(job, state.port).await);
        }
        // Earlier runs of this job were compensated; remove what is left.
        let prefix = format!("{}-", job.job_id);
        if let Ok(entries) = std::fs::read_dir(self.layout.restores()) {
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name.starts_with(&prefix) && entry.path() != home.dir() {
                    let owner = format!("restore {name}");
                    self.remove_restore(
                        &ClusterHome(entry.path()),
                        &owner,
                        Some(job.new_cluster_id),
                    )
                    .await;
                }
            }
        }
        // A Unix socket's name holds 107 bytes: a fleet folder too deep
        // would only fail when the copy starts, after its whole restore.
        let socket = home.socket_dir().join(".s.PGSQL.65535");
        if socket.as_os_str().len() > 107 {
            return Err(StepError::fatal(
                "fleet_dir_too_long",
                format!(
                    "the new cluster's socket path {} is longer than the 107 bytes a Unix socket \
                     may have: use a shorter FLEET_DIR on this host",
                    socket.display()
                ),
            ));
        }
        progress.report(0.2, "reserving a port and a data directory");
        let owner = Self::restore_owner(job);
        let port = self
            .allocate_port(&owner)
            .map_err(|e| StepError::retryable("no_free_port", e))?;
        make_dir(home.dir(), &self.user, 0o750)
            .map_err(io_step("creating the restore directory"))?;
        self.write_state(
            &home,
            &RestoreState {
                job_id: job.job_id,
                run: job.run,
                source_cluster_id: job.source.id,
                new_cluster_id: job.new_cluster_id,
                port,
                promoted: false,
                last_replayed_commit: None,
                paused_at: None,
                host: Some(self.config.host.clone()),
            },
        )?;
        progress.report(1.0, "port and data directory reserved");
        Ok(self.connection_for(job, port).await)
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run, snapshot = %plan.snapshot_id, zone = %plan.zone))]
    async fn restore_snapshot(
        &self,
        job: &JobContext,
        plan: &RestorePlan,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<(), StepError> {
        let (home, mut state) = self.provisioned(job)?;
        let reach = match self.reach(&job.source).await {
            Ok(Some(reach)) => reach,
            Ok(None) => {
                return Err(StepError::fatal(
                    "source_not_in_fleet",
                    format!(
                        "cluster {} has no repositories in this fleet",
                        job.source.name
                    ),
                ));
            }
            Err(error) => {
                return Err(StepError::retryable("fleet_unreachable", error.to_string()));
            }
        };
        let online = self
            .store
            .online_zones(&job.source.region)
            .await
            .map_err(|e| StepError::retryable("store_unavailable", e.to_string()))?;
        if !online.contains(plan.zone) {
            return Err(StepError::retryable(
                "zone_offline",
                format!("zone {} is offline", plan.zone),
            ));
        }
        // Start from nothing: a restore an earlier attempt left running, a
        // server it started, its files.
        progress.report(0.0, "clearing the new cluster's directory");
        stop_leftover(&home.restore_pid(), "pgbackrest").await;
        self.server(&home, state.port)
            .stop(false)
            .await
            .map_err(|e| server_step("stopping a server left by an earlier attempt", e))?;
        if home.data().exists() {
            tokio::fs::remove_dir_all(home.data())
                .await
                .map_err(io_step("clearing the data directory"))?;
        }
        let _ = std::fs::remove_file(home.server_log());
        make_dir(&home.data(), &self.user, 0o700)
            .map_err(io_step("creating the data directory"))?;
        make_dir(&home.socket_dir(), &self.user, 0o700)
            .map_err(io_step("creating the socket directory"))?;
        make_dir(&home.restore_spool(), &self.user, 0o700)
            .map_err(io_step("creating the spool directory"))?;
        if state.promoted || state.paused_at.is_some() {
            state.promoted = false;
            state.last_replayed_commit = None;
            state.paused_at = None;
            self.write_state(&home, &state)?;
        }

        let mut command = self.backrest(&reach.conf, &reach.stanza);
        command
            .args(reach.transfer_args(plan.zone))
            .arg(format!("--set={}", plan.snapshot_id));
        // A transaction target stops exactly there: before its commit
        // (exclusive) or after it.
        match job.transaction {
            Some(transaction) => {
                command
                    .arg("--type=xid")
                    .arg(format!("--target={}", transaction.xid));
                if transaction.position == TxPosition::Before {
                    command.arg("--target-exclusive");
                }
            }
            None => {
                command
                    .arg("--type=time")
                    .arg(format!("--target={}", target_text(job.target)));
            }
        }
        // A copy to inspect stops paused, read-only, at the target; the
        // hand-over promotes it.
        command
            .arg(if job.inspect {
                "--target-action=pause"
            } else {
                "--target-action=promote"
            })
            .arg("--archive-mode=off")
            .arg(format!("--pg1-path={}", home.data().display()))
            .arg("--log-level-console=detail")
            .arg("--log-level-stderr=warn")
            .arg("restore")
            // A spool of its own (see `restore_spool`), from the environment
            // so pgBackRest leaves it out of the `restore_command` it writes:
            // synchronous archive-get refuses the option.
            .env("PGBACKREST_SPOOL_PATH", home.restore_spool());
        let detail = format!("restoring snapshot {} from {}", plan.snapshot_id, plan.zone);
        progress.report(0.0, &detail);
        // Like the sandbox, give up when an admin takes the zone offline.
        let stop = cancel.child_token();
        let went_offline = std::sync::atomic::AtomicBool::new(false);
        let watch = async {
            loop {
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                }
                if let Ok(online) = self.store.online_zones(&job.source.region).await
                    && !online.contains(plan.zone)
                {
                    went_offline.store(true, std::sync::atomic::Ordering::SeqCst);
                    stop.cancel();
                    return;
                }
            }
        };
        let mut last_reported = 0.0;
        // Bytes copied so far, and the total they are of: pgBackRest's
        // percent is of the bytes to copy.
        let mut copied = 0.0;
        let restore = async {
            let outcome = run_tracked(
                command,
                StdDuration::from_secs(6 * 3600),
                &stop,
                Some(&home.restore_pid()),
                |line| {
                    if let Some(bytes) = restore_file_bytes(line) {
                        copied += bytes;
                    }
                    if let Some(percent) = restore_percent(line) {
                        let fraction = (percent / 100.0).clamp(0.0, 1.0);
                        if fraction - last_reported >= 0.01 || fraction >= 1.0 {
                            last_reported = fraction;
                            let said = if fraction > 0.0 {
                                format!(
                                    "{detail}: {} of {} copied",
                                    size_words(copied),
                                    size_words(copied / fraction)
                                )
                            } else {
                                detail.clone()
                            };
                            progress.report(fraction, &said);
                        }
                    }
                },
            )
            .await;
            stop.cancel();
            outcome
        };
        let (outcome, ()) = tokio::join!(restore, watch);
        let finished = match outcome {
            Err(RunError::Cancelled) if went_offline.load(std::sync::atomic::Ordering::SeqCst) => {
                return Err(StepError::retryable(
                    "zone_offline",
                    format!("zone {} went offline while restoring from it", plan.zone),
                ));
            }
            other => other.map_err(RunError::into_step)?,
        };
        if !finished.success() {
            // A zone whose repository reads fine but whose backup's files do
            // not is no outage to wait out: that copy is damaged.
            if exit::damaged_backup(finished.code(), &finished.stderr)
                && self
                    .read_info(&reach)
                    .await
                    .is_ok_and(|info| info.readable_zones().contains(plan.zone))
            {
                return Err(exit::damaged(
                    &plan.snapshot_id,
                    plan.zone,
                    &finished.reason(),
                ));
            }
            return Err(exit::restore_failure(
                finished.code(),
                plan.zone,
                &finished.reason(),
                &finished.stderr,
            ));
        }
        // The copy carries the source's fleet.conf (its port, its archive):
        // replace it before the copy ever starts.
        write_file(
            &home.data().join("fleet.conf"),
            &layout::fleet_conf(&home, state.port, None),
            &self.user,
            0o600,
        )
        .map_err(io_step("writing the new cluster's fleet.conf"))?;
        if reach.networked {
            self.adapt_copy(&home, job, state.port)?;
        }
        progress.report(1.0, &detail);
        Ok(())
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn replay_log(
        &self,
        job: &JobContext,
        progress: &dyn Progress,
        cancel: &CancellationToken,
    ) -> Result<Option<DateTime<Utc>>, StepError> {
        let (home, mut state) = self.provisioned(job)?;
        if state.promoted {
            return Ok(state.last_replayed_commit);
        }
        let target_words = recovery_target_of(job);
        if job.inspect && state.paused_at.as_deref() == Some(target_words.as_str()) {
            return Ok(state.last_replayed_commit);
        }
        if !home.data().join("global/pg_control").is_file() {
            return Err(StepError::fatal(
                "snapshot_missing",
                "the snapshot was not laid down completely: restore it again",
            ));
        }
        let server = self.server(&home, state.port);
        // Paused at an earlier target, the same copy replays on to the new
        // one: recovery reads its target at start, so it restarts with it.
        if state.paused_at.is_some() {
            progress.report(0.02, "moving the paused copy on to the new target");
            let auto = home.data().join("postgresql.auto.conf");
            let text = std::fs::read_to_string(&auto)
                .map_err(io_step("reading the restored configuration"))?;
            let moved = layout::with_recovery_target(&text, &recovery_settings(job));
            write_file(&auto, &moved, &self.user, 0o600)
                .map_err(io_step("writing the restored configuration"))?;
            server
                .stop(true)
                .await
                .map_err(|e| server_step("stopping the paused copy", e))?;
            state.paused_at = None;
            self.write_state(&home, &state)?;
        }
        let mut wal_zone = job.plan.as_ref().map(|p| p.zone);
        if server.pid().is_none() {
            wal_zone = Some(self.choose_wal_zone(job, &home.data()).await?);
            progress.report(0.05, "starting the new cluster");
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        progress.report(0.1, "replaying the archived log to the target time");
        // Progress is the commit time replayed against the target, from
        // the snapshot's end, watched on a connection of its own while the
        // wait for promotion goes on.
        let replay = crate::backend::ReplayProgress {
            inner: progress,
            from: job
                .plan
                .as_ref()
                .map_or(job.target, |p| p.snapshot_finished_at),
            to: job.target,
        };
        let watch = async {
            let mut conn: Option<sqlx::PgConnection> = None;
            loop {
                // Often enough that a replay of a few seconds shows moving.
                tokio::time::sleep(StdDuration::from_millis(100)).await;
                if conn.is_none() {
                    conn = server.connect().await.ok();
                }
                let Some(open) = conn.as_mut() else { continue };
                let read: Result<(bool, Option<DateTime<Utc>>), sqlx::Error> =
                    sqlx::query_as("SELECT pg_is_in_recovery(), pg_last_xact_replay_timestamp()")
                        .fetch_one(&mut *open)
                        .await;
                match read {
                    Ok((true, Some(reached))) => {
                        replay.replayed(reached.min(job.target));
                        let done = replay.fraction_at(reached);
                        progress.report(
                            0.1 + 0.89 * done,
                            "replaying the archived log to the target time",
                        );
                    }
                    Ok(_) => {}
                    Err(_) => conn = None,
                }
            }
        };
        let inspect = job.inspect;
        let wait = server.wait_for(self.config.replay_timeout, cancel, async move |conn| {
            // Done once promoted, or, for a copy to inspect, once it stands
            // paused at the target.
            let (in_recovery, paused, replayed): (bool, bool, Option<DateTime<Utc>>) =
                sqlx::query_as(
                    "SELECT pg_is_in_recovery(), \
                            pg_is_in_recovery() AND pg_get_wal_replay_pause_state() = 'paused', \
                            pg_last_xact_replay_timestamp()",
                )
                .fetch_one(&mut *conn)
                .await?;
            let done = if inspect { paused } else { !in_recovery };
            Ok(done.then_some(replayed))
        });
        let outcome = tokio::select! {
            outcome = wait => outcome,
            () = watch => unreachable!("the watch never ends"),
        };
        let replayed = match outcome {
            Ok(replayed) => replayed,
            Err(ServerError::Died(reason)) => {
                let target = target_text(job.target);
                // A zone lost mid-replay looks like the end of the archive:
                // PostgreSQL only sees restore_command fail.
                let lost = match (wal_zone, self.info(&job.source).await) {
                    (Some(zone), Ok(info)) => {
                        (!info.readable_zones().contains(zone)).then_some(zone)
                    }
                    (Some(zone), Err(_)) => Some(zone),
                    (None, _) => None,
                };
                return Err(if let Some(zone) = lost {
                    StepError::retryable(
                        "zone_unavailable",
                        format!(
                            "zone {zone} became unreadable while replaying the log from it: {reason}"
                        ),
                    )
                } else if reason.contains("recovery ended before configured recovery target") {
                    StepError::fatal(
                        "target_not_reached",
                        format!("the archived log ends before {target}: {reason}"),
                    )
                } else if reason.contains("before consistent recovery point") {
                    StepError::fatal(
                        "target_before_snapshot",
                        format!("{target} is before the snapshot is consistent: {reason}"),
                    )
                } else {
                    StepError::retryable(
                        "server_failed",
                        format!("the new cluster stopped during recovery: {reason}"),
                    )
                });
            }
            Err(other) => return Err(server_step("replaying the log", other)),
        };
        // Restarted since its promotion, the server no longer says.
        let replayed = replayed.or_else(|| {
            let log = std::fs::read_to_string(home.server_log()).ok()?;
            server::last_completed_transaction(&log)
        });
        state.last_replayed_commit = replayed;
        if job.inspect {
            state.paused_at = Some(target_words);
            self.write_state(&home, &state)?;
            progress.report(1.0, "paused at the target, read-only");
        } else {
            state.promoted = true;
            self.write_state(&home, &state)?;
            progress.report(1.0, "promoted");
        }
        Ok(replayed)
    }

    async fn restore_work(
        &self,
        cluster: &Cluster,
        plan: &RestorePlan,
        target: DateTime<Utc>,
    ) -> Result<crate::domain::eta::Work, FleetError> {
        let reach = self.reach_or_fail(cluster).await?;
        let info = self.read_info(&reach).await?;
        let unknown = || {
            FleetError::Unreachable(format!(
                "snapshot {} is not in {}",
                plan.snapshot_id, plan.zone
            ))
        };
        let repo = info.repo(plan.zone).ok_or_else(unknown)?;
        let backup = repo
            .backups
            .iter()
            .find(|b| b.label == plan.snapshot_id)
            .ok_or_else(unknown)?;
        // The log to replay: the zone's archive from the backup's first
        // segment on, taken as written evenly up to where the log ends, and
        // cut at the target.
        let ends = self.log_ends(&reach, &info).await;
        let wal_bytes = match (&backup.wal_start, &repo.wal, ends.get(&plan.zone)) {
            (Some(first), Some((_, newest)), Some(end)) => {
                let segments = info::segments_between(first, newest).unwrap_or(1);
                let whole = (*end - backup.started_at).num_milliseconds().max(1) as f64;
                let part = (target - backup.started_at).num_milliseconds().max(0) as f64;
                (segments as f64 * info::SEGMENT_BYTES as f64 * (part / whole).min(1.0)) as i64
            }
            _ => 0,
        };
        Ok(crate::domain::eta::Work {
            backup_bytes: backup.size.unwrap_or(0),
            wal_bytes,
        })
    }

    async fn adoptable(
        &self,
        location: &FleetLocation,
        zones: ZoneSet,
    ) -> Result<Option<DateTime<Utc>>, crate::backend::AdoptionRefusal> {
        self.check_adoption(location, zones).await
    }

    async fn runs_restores(&self) -> bool {
        self.runs_restores_here().await
    }

    async fn free_space(&self) -> Result<i64, FleetError> {
        let restores = self.layout.restores();
        let free = tokio::task::spawn_blocking(move || crate::disk::free_bytes(&restores))
            .await
            .ok()
            .flatten()
            .ok_or_else(|| {
                FleetError::Unreachable("the restores folder's free space cannot be read".into())
            })?;
        Ok(i64::try_from(free).unwrap_or(i64::MAX))
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn examine(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Vec<crate::domain::verification::Check>, StepError> {
        let (home, state) = self.provisioned(job)?;
        if cancel.is_cancelled() {
            return Err(StepError::Interrupted);
        }
        let mut checks = vec![self.amcheck(&home, state.port).await?];
        if let Some(canary) = &job.canary {
            let server = self.server(&home, state.port);
            checks.push(canary_check(&server, &job.source.connection.database, canary).await);
        }
        Ok(checks)
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn inspect(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<ObservedCluster, StepError> {
        let (home, state) = self.provisioned(job)?;
        let server = self.server(&home, state.port);
        if server.pid().is_none() && state.promoted {
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        let observed = server
            .wait_for(StdDuration::from_secs(60), cancel, async |conn| {
                let row: (
                    bool,
                    String,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ) = sqlx::query_as(
                    "SELECT pg_is_in_recovery(), current_setting('server_version_num'), \
                         current_setting('restore_desk.tier', true), \
                         current_setting('restore_desk.vcores', true), \
                         current_setting('restore_desk.storage_gib', true), \
                         current_setting('restore_desk.node_count', true), \
                         current_setting('restore_desk.high_availability', true)",
                )
                .fetch_one(&mut *conn)
                .await?;
                Ok(Some(row))
            })
            .await;
        let (in_recovery, version, tier, vcores, storage, nodes, ha) = match observed {
            Ok(row) => row,
            Err(ServerError::Cancelled) => return Err(StepError::Interrupted),
            Err(error) => {
                tracing::warn!(%error, "the new cluster does not answer");
                return Ok(ObservedCluster {
                    accepting_connections: false,
                    in_recovery: true,
                    last_replayed_commit: state.last_replayed_commit,
                    config: ClusterConfig {
                        tier: String::new(),
                        vcores: 0,
                        storage_gib: 0,
                        node_count: 0,
                        high_availability: false,
                        server_version: String::new(),
                    },
                });
            }
        };
        let number = |v: Option<String>| v.and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let major = version
            .parse::<i64>()
            .map(|n| (n / 10000).to_string())
            .unwrap_or(version);
        Ok(ObservedCluster {
            accepting_connections: true,
            in_recovery,
            last_replayed_commit: state.last_replayed_commit,
            config: ClusterConfig {
                tier: tier.unwrap_or_default(),
                vcores: number(vcores),
                storage_gib: number(storage),
                node_count: number(nodes),
                high_availability: ha.as_deref() == Some("true"),
                server_version: major,
            },
        })
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn finalize(
        &self,
        job: &JobContext,
        cancel: &CancellationToken,
    ) -> Result<Connection, StepError> {
        let (home, mut state) = self.provisioned(job)?;
        if !state.promoted && state.paused_at.is_some() {
            // The customer accepted the paused copy: it leaves recovery here.
            let server = self.server(&home, state.port);
            if server.pid().is_none() {
                server
                    .start()
                    .map_err(|e| server_step("starting the paused copy", e))?;
            }
            server
                .wait_for(StdDuration::from_secs(120), cancel, async |conn| {
                    let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                        .fetch_one(&mut *conn)
                        .await?;
                    if in_recovery {
                        sqlx::query("SELECT pg_promote(true, 60)")
                            .execute(&mut *conn)
                            .await?;
                        return Ok(None);
                    }
                    Ok(Some(()))
                })
                .await
                .map_err(|e| server_step("promoting the paused copy", e))?;
            state.promoted = true;
            state.paused_at = None;
            self.write_state(&home, &state)?;
        }
        if !state.promoted {
            return Err(StepError::fatal(
                "not_promoted",
                "the new cluster never left recovery",
            ));
        }
        let auto = home.data().join("postgresql.auto.conf");
        let text =
            std::fs::read_to_string(&auto).map_err(io_step("reading postgresql.auto.conf"))?;
        let cleaned = layout::without_recovery_settings(&text);
        if cleaned != text {
            write_file(&auto, &cleaned, &self.user, 0o600)
                .map_err(io_step("writing postgresql.auto.conf"))?;
        }
        let server = self.server(&home, state.port);
        if server.pid().is_none() {
            server
                .start()
                .map_err(|e| server_step("starting the new cluster", e))?;
        }
        server
            .wait_for(StdDuration::from_secs(60), cancel, async |conn| {
                let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                    .fetch_one(&mut *conn)
                    .await?;
                Ok((!in_recovery).then_some(()))
            })
            .await
            .map_err(|e| server_step("opening the new cluster", e))?;
        // Across hosts its log and backups go to the zones from now on.
        self.archive_into_zones(&home, job, state.port, cancel)
            .await?;
        // From now on the fleet knows the cluster by its id, like a source.
        let link = self.layout.cluster(job.new_cluster_id);
        if std::fs::symlink_metadata(link.dir()).is_err() {
            std::os::unix::fs::symlink(home.dir(), link.dir())
                .map_err(io_step("registering the new cluster"))?;
        }
        Ok(self.connection_for(job, state.port).await)
    }

    #[tracing::instrument(skip_all, fields(job = %job.job_id, run = job.run))]
    async fn teardown(&self, job: &JobContext) -> Result<(), StepError> {
        let home = self.layout.restore(job.job_id, job.run);
        let new_cluster = (job.new_cluster_id != job.source.id).then_some(job.new_cluster_id);
        self.remove_restore(&home, &Self::restore_owner(job), new_cluster)
            .await;
        if home.dir().exists() {
            return Err(StepError::retryable(
                "teardown_incomplete",
                format!("{} could not be removed", home.dir().display()),
            ));
        }
        Ok(())
    }

    fn location_of(&self, job: &JobContext) -> Option<FleetLocation> {
        self.location_of_run(job)
    }

    async fn remove_leftovers(
        &self,
        host: &str,
        keep: &[(JobId, i64)],
    ) -> Result<usize, FleetError> {
        self.remove_restores_not_held(host, keep).await
    }

    async fn run_backups(&self, now: DateTime<Utc>) -> Result<BackupRound, FleetError> {
        let clusters = self
            .store
            .clusters(Scope::Everything, true)
            .await
            .map_err(|e| FleetError::Unreachable(e.to_string()))?;
        let mut round = BackupRound::default();
        // One cluster's trouble does not hold the others' backups back.
        // Across hosts each zone's host takes its own backups.
        for cluster in clusters
            .iter()
            .filter(|c| c.location.is_none() && self.is_source(c.id))
        {
            if let Err(error) = self.backup_cluster(cluster, now, &mut round).await {
                tracing::error!(cluster = %cluster.name, %error, "automatic backups");
            }
        }
        Ok(round)
    }

    async fn transactions(
        &self,
        cluster: &Cluster,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<LogRead, FleetError> {
        self.log_between(cluster, from, to).await
    }

    async fn transaction(
        &self,
        cluster: &Cluster,
        xid: u64,
    ) -> Result<Option<LoggedTransaction>, FleetError> {
        self.find_transaction(cluster, xid).await
    }

    async fn relation_names(
        &self,
        cluster: &Cluster,
    ) -> Result<Vec<(RelationFile, RelationName)>, FleetError> {
        self.source_relation_names(cluster).await
    }
}
