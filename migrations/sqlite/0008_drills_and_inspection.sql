-- Restore drills: a job is a customer's restore (with its ticket) or a
-- drill (none), run on a restore host; jobs keep the work they do (the
-- backup's bytes and the log's) for the estimates, and the step a failure
-- ended in. A restored copy may wait paused for the customer's decision
-- (paused), or be removed to go back to an earlier moment (rewinding).
-- SQLite cannot relax NOT NULL or change a CHECK in place, so the tables
-- are rebuilt (the desk migrates with foreign keys off, and checks them
-- after).
CREATE TABLE restore_jobs_new (
    id                  BLOB PRIMARY KEY,
    kind                TEXT NOT NULL DEFAULT 'restore' CHECK (kind IN ('restore', 'drill')),
    ticket_id           BLOB UNIQUE REFERENCES tickets (id),  -- one approval, one job; drills have none
    source_cluster_id   BLOB NOT NULL REFERENCES clusters (id),
    target_time         TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('queued', 'provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing', 'succeeded', 'failing', 'cancelling', 'preempted', 'paused', 'rewinding', 'failed', 'cancelled')),
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

-- Inspect before hand-over: a ticket may ask for its restored copy to stop
-- paused and read-only at the target; it then waits for the customer's
-- decision (awaiting_decision) until decision_due.
CREATE TABLE tickets_new (
    id                  BLOB PRIMARY KEY,
    number              INTEGER NOT NULL UNIQUE,
    subscription_id     BLOB NOT NULL REFERENCES subscriptions (id),
    requester_id        BLOB NOT NULL REFERENCES users (id),
    cluster_id          BLOB NOT NULL REFERENCES clusters (id),
    resource_group      TEXT NOT NULL,
    target_time         TEXT NOT NULL,
    time_zone           TEXT NOT NULL,
    new_cluster_name    TEXT NOT NULL,
    severity            TEXT NOT NULL CHECK (severity IN ('A', 'B', 'C')),
    description         TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('submitted', 'triage', 'in_review', 'awaiting_customer', 'approved', 'restoring', 'awaiting_decision', 'completed', 'failed', 'rejected', 'cancelled')),
    version             INTEGER NOT NULL,
    assignee_id         BLOB REFERENCES users (id),
    validation_report   TEXT NOT NULL,
    rejection_reason    TEXT,
    deadline            TEXT NOT NULL,
    first_response_due  TEXT NOT NULL,
    first_response_at   TEXT,
    deadline_warned_at  TEXT,
    new_cluster_id      BLOB,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    target_xid          INTEGER,
    target_position     TEXT CHECK (target_position IN ('before', 'after')),
    inspect             BOOLEAN NOT NULL DEFAULT FALSE,
    decision_due        TEXT
);
INSERT INTO tickets_new (id, number, subscription_id, requester_id, cluster_id, resource_group,
    target_time, time_zone, new_cluster_name, severity, description, state, version, assignee_id,
    validation_report, rejection_reason, deadline, first_response_due, first_response_at,
    deadline_warned_at, new_cluster_id, created_at, updated_at, target_xid, target_position)
SELECT id, number, subscription_id, requester_id, cluster_id, resource_group, target_time,
    time_zone, new_cluster_name, severity, description, state, version, assignee_id,
    validation_report, rejection_reason, deadline, first_response_due, first_response_at,
    deadline_warned_at, new_cluster_id, created_at, updated_at, target_xid, target_position
FROM tickets;
DROP TABLE tickets;
ALTER TABLE tickets_new RENAME TO tickets;
CREATE UNIQUE INDEX tickets_reserved_name
    ON tickets (subscription_id, resource_group, new_cluster_name)
    WHERE state NOT IN ('completed', 'rejected', 'cancelled');
CREATE INDEX tickets_queue ON tickets (deadline, severity, number);
CREATE INDEX tickets_state_queue ON tickets (state, deadline, severity, number);
CREATE INDEX tickets_subscription ON tickets (subscription_id, number);
CREATE INDEX tickets_assignee ON tickets (assignee_id, deadline);
