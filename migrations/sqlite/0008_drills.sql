-- Restore drills: a job is a customer's restore (with its ticket) or a
-- drill (none), run on a restore host; jobs keep the work they do (the
-- backup's bytes and the log's) for the estimates, and the step a failure
-- ended in. SQLite cannot relax NOT NULL or change a CHECK in place, so the
-- table is rebuilt; nothing references it.
CREATE TABLE restore_jobs_new (
    id                  BLOB PRIMARY KEY,
    kind                TEXT NOT NULL DEFAULT 'restore' CHECK (kind IN ('restore', 'drill')),
    ticket_id           BLOB UNIQUE REFERENCES tickets (id),  -- one approval, one job; drills have none
    source_cluster_id   BLOB NOT NULL REFERENCES clusters (id),
    target_time         TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('queued', 'provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing', 'succeeded', 'failing', 'cancelling', 'preempted', 'failed', 'cancelled')),
    run                 INTEGER NOT NULL DEFAULT 1,
    attempt             INTEGER NOT NULL DEFAULT 1,
    run_after           TEXT NOT NULL,
    new_cluster_id      BLOB NOT NULL,
    snapshot_id         TEXT,
    snapshot_finished_at TEXT,
    zone                TEXT CHECK (zone IN ('az1', 'az2', 'az3')),
    progress            INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    step_detail         TEXT NOT NULL DEFAULT '',
    lease_owner         TEXT,
    lease_token         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    TEXT,
    last_error_code     TEXT,
    last_error          TEXT,
    step_started_at     TEXT NOT NULL,
    progress_at         TEXT NOT NULL,
    stalled_since       TEXT,
    reached_point       TEXT,
    verification_report TEXT,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    finished_at         TEXT,
    replayed_to         TEXT,
    -- The restore host running this run; set when a worker takes it up.
    host                TEXT,
    -- A drill restores from this zone only.
    drill_zone          TEXT CHECK (drill_zone IN ('az1', 'az2', 'az3')),
    -- The work of this run, once its snapshot is chosen: what estimates scale by.
    backup_bytes        INTEGER,
    wal_bytes           INTEGER,
    -- The step a failure that ended the run happened in.
    failed_step         TEXT,
    CHECK ((kind = 'restore') = (ticket_id IS NOT NULL))
);
INSERT INTO restore_jobs_new (id, kind, ticket_id, source_cluster_id, target_time, state, run,
    attempt, run_after, new_cluster_id, snapshot_id, snapshot_finished_at, zone, progress,
    step_detail, lease_owner, lease_token, lease_expires_at, last_error_code, last_error,
    step_started_at, progress_at, stalled_since, reached_point, verification_report, created_at,
    updated_at, finished_at, replayed_to)
SELECT id, 'restore', ticket_id, source_cluster_id, target_time, state, run, attempt, run_after,
    new_cluster_id, snapshot_id, snapshot_finished_at, zone, progress, step_detail, lease_owner,
    lease_token, lease_expires_at, last_error_code, last_error, step_started_at, progress_at,
    stalled_since, reached_point, verification_report, created_at, updated_at, finished_at,
    replayed_to
FROM restore_jobs;
DROP TABLE restore_jobs;
ALTER TABLE restore_jobs_new RENAME TO restore_jobs;
CREATE INDEX restore_jobs_runnable ON restore_jobs (run_after)
    WHERE state NOT IN ('succeeded', 'failed', 'cancelled');
-- A cluster's runs, newest first: its drills, its estimates.
CREATE INDEX restore_jobs_cluster ON restore_jobs (source_cluster_id, created_at);

-- An admin may drill a cluster more or less often than DRILL_INTERVAL_HOURS,
-- and give it a read-only canary query each drill must find true.
ALTER TABLE clusters ADD COLUMN drill_interval_hours INTEGER;
ALTER TABLE clusters ADD COLUMN canary_query TEXT;

-- A job's state changes, for the step durations estimates learn from (a
-- drill's events have no ticket).
CREATE INDEX events_job ON events (job_id, id);

-- Backup copies of the simulated fleet gone bad (a fault an admin or a test
-- injects, as a file of a real backup deleted or altered): a restore from
-- such a copy fails its checksum.
CREATE TABLE sandbox_damaged_copies (
    snapshot_id TEXT NOT NULL REFERENCES sandbox_snapshots (id) ON DELETE CASCADE,
    zone        TEXT NOT NULL CHECK (zone IN ('az1', 'az2', 'az3')),
    PRIMARY KEY (snapshot_id, zone)
);
