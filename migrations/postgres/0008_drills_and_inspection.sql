-- Restore drills: a job is a customer's restore (with its ticket) or a
-- drill (none), run on a restore host; jobs keep the work they do (the
-- backup's bytes and the log's) for the estimates, and the step a failure
-- ended in. A restored copy may wait paused for the customer's decision
-- (paused), or be removed to go back to an earlier moment (rewinding).
ALTER TABLE restore_jobs
    ADD COLUMN kind TEXT NOT NULL DEFAULT 'restore' CHECK (kind IN ('restore', 'drill')),
    ALTER COLUMN ticket_id DROP NOT NULL,
    -- The restore host running this run; set when a worker takes it up.
    ADD COLUMN host TEXT,
    -- A drill restores from this zone only.
    ADD COLUMN drill_zone TEXT CHECK (drill_zone IN ('az1', 'az2', 'az3')),
    -- The work of this run, once its snapshot is chosen: what estimates scale by.
    ADD COLUMN backup_bytes BIGINT,
    ADD COLUMN wal_bytes BIGINT,
    -- The step a failure that ended the run happened in.
    ADD COLUMN failed_step TEXT,
    ADD CONSTRAINT restore_jobs_kind_ticket CHECK ((kind = 'restore') = (ticket_id IS NOT NULL)),
    DROP CONSTRAINT restore_jobs_state_check;
ALTER TABLE restore_jobs
    ADD CONSTRAINT restore_jobs_state_check CHECK (state IN ('queued', 'provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing', 'succeeded', 'failing', 'cancelling', 'preempted', 'paused', 'rewinding', 'failed', 'cancelled'));
-- A cluster's runs, newest first: its drills, its estimates.
CREATE INDEX restore_jobs_cluster ON restore_jobs (source_cluster_id, created_at);

-- An admin may drill a cluster more or less often than DRILL_INTERVAL_HOURS,
-- and give it a read-only canary query each drill must find true.
ALTER TABLE clusters ADD COLUMN drill_interval_hours BIGINT;
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
ALTER TABLE tickets
    ADD COLUMN inspect BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN decision_due TIMESTAMPTZ,
    DROP CONSTRAINT tickets_state_check;
ALTER TABLE tickets
    ADD CONSTRAINT tickets_state_check CHECK (state IN ('submitted', 'triage', 'in_review', 'awaiting_customer', 'approved', 'restoring', 'awaiting_decision', 'completed', 'failed', 'rejected', 'cancelled'));
