-- Restore Desk schema, SQLite flavour. Kept column for column in step with
-- migrations/postgres: the same store code runs against both.
--
-- Types: ids are UUIDs (16-byte BLOBs here); times are UTC RFC 3339 text,
-- which sorts in time order because every value carries the same +00:00
-- offset; booleans are 0/1. States are text checked against the lists that
-- mirror the Rust enums (a test keeps them equal).

CREATE TABLE subscriptions (
    id          BLOB PRIMARY KEY,
    slug        TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id              BLOB PRIMARY KEY,
    email           TEXT NOT NULL UNIQUE,  -- lowercase
    display_name    TEXT NOT NULL,
    password_hash   TEXT NOT NULL,         -- Argon2id, PHC string
    role            TEXT NOT NULL CHECK (role IN ('customer', 'staff', 'admin')),
    subscription_id BLOB REFERENCES subscriptions (id),
    time_zone       TEXT NOT NULL DEFAULT 'UTC',
    disabled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TEXT NOT NULL,
    -- Customers belong to exactly one subscription; staff to none.
    CHECK ((role = 'customer') = (subscription_id IS NOT NULL))
);

-- Bearer tokens of the JSON API, stored as SHA-256 so a leaked table grants nothing.
CREATE TABLE api_tokens (
    token_hash  TEXT PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);

CREATE TABLE zones (
    region      TEXT NOT NULL,
    zone        TEXT NOT NULL CHECK (zone IN ('az1', 'az2', 'az3')),
    online      BOOLEAN NOT NULL,
    changed_at  TEXT NOT NULL,
    PRIMARY KEY (region, zone)
);

CREATE TABLE clusters (
    id                      BLOB PRIMARY KEY,
    subscription_id         BLOB NOT NULL REFERENCES subscriptions (id),
    resource_group          TEXT NOT NULL,
    region                  TEXT NOT NULL,
    name                    TEXT NOT NULL,
    tier                    TEXT NOT NULL,
    vcores                  INTEGER NOT NULL,
    storage_gib             INTEGER NOT NULL,
    node_count              INTEGER NOT NULL,
    high_availability       BOOLEAN NOT NULL,
    server_version          TEXT NOT NULL,
    host                    TEXT NOT NULL,
    port                    INTEGER NOT NULL,
    database_name           TEXT NOT NULL,
    db_user                 TEXT NOT NULL,
    status                  TEXT NOT NULL CHECK (status IN ('building', 'ready')),
    created_at              TEXT NOT NULL,
    deleted_at              TEXT,
    restored_from_ticket_id BLOB,
    restored_point          TEXT
);
-- A name is taken while a live cluster holds it; deleting frees it.
CREATE UNIQUE INDEX clusters_live_name
    ON clusters (subscription_id, resource_group, name) WHERE deleted_at IS NULL;
CREATE INDEX clusters_subscription ON clusters (subscription_id, name);

-- The simulated fleet's backups (BACKEND=sandbox). The pgbackrest backend
-- reads its catalog from pgBackRest instead.
CREATE TABLE sandbox_snapshots (
    id          TEXT PRIMARY KEY,
    cluster_id  BLOB NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    finished_at TEXT NOT NULL,
    in_az1      BOOLEAN NOT NULL,
    in_az2      BOOLEAN NOT NULL,
    in_az3      BOOLEAN NOT NULL
);
CREATE INDEX sandbox_snapshots_cluster ON sandbox_snapshots (cluster_id, finished_at);

-- Archived log. An open span (ended_at NULL) is still being archived.
CREATE TABLE sandbox_log_spans (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  BLOB NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    started_at  TEXT NOT NULL,
    ended_at    TEXT,
    in_az1      BOOLEAN NOT NULL,
    in_az2      BOOLEAN NOT NULL,
    in_az3      BOOLEAN NOT NULL
);
CREATE INDEX sandbox_log_spans_cluster ON sandbox_log_spans (cluster_id, started_at);

-- Faults injected into the simulated fleet from the admin pages.
CREATE TABLE sandbox_faults (
    id          BLOB PRIMARY KEY,
    kind        TEXT NOT NULL CHECK (kind IN ('fail_step', 'slow_step')),
    step        TEXT NOT NULL CHECK (step IN ('provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing')),
    permanent   BOOLEAN NOT NULL DEFAULT FALSE,
    remaining   INTEGER NOT NULL CHECK (remaining >= 0),
    delay_ms    INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL
);

-- Ticket numbers come from a counter rather than MAX(number) + 1 so that
-- they are allocated before the filing transaction, for the email subjects.
CREATE TABLE counters (
    name   TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('ticket_number', 0);

CREATE TABLE tickets (
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
    state               TEXT NOT NULL CHECK (state IN ('submitted', 'triage', 'in_review', 'awaiting_customer', 'approved', 'restoring', 'completed', 'failed', 'rejected', 'cancelled')),
    version             INTEGER NOT NULL,      -- optimistic locking: every change is a compare-and-set on it
    assignee_id         BLOB REFERENCES users (id),
    validation_report   TEXT NOT NULL,         -- JSON, the latest check of the target
    rejection_reason    TEXT,
    deadline            TEXT NOT NULL,         -- when the target leaves the restorable window
    first_response_due  TEXT NOT NULL,
    first_response_at   TEXT,
    deadline_warned_at  TEXT,
    new_cluster_id      BLOB,
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL
);
-- An open ticket reserves its new cluster name, so two requests cannot race for it.
CREATE UNIQUE INDEX tickets_reserved_name
    ON tickets (subscription_id, resource_group, new_cluster_name)
    WHERE state NOT IN ('completed', 'rejected', 'cancelled');
-- The staff queue: deadline, then severity, keyset-paginated by number.
CREATE INDEX tickets_queue ON tickets (deadline, severity, number);
CREATE INDEX tickets_state_queue ON tickets (state, deadline, severity, number);
CREATE INDEX tickets_subscription ON tickets (subscription_id, number);
CREATE INDEX tickets_assignee ON tickets (assignee_id, deadline);

CREATE TABLE messages (
    id          BLOB PRIMARY KEY,
    ticket_id   BLOB NOT NULL REFERENCES tickets (id),
    author_id   BLOB REFERENCES users (id),
    author_role TEXT NOT NULL CHECK (author_role IN ('customer', 'staff', 'admin', 'system')),
    visibility  TEXT NOT NULL CHECK (visibility IN ('public', 'internal')),
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX messages_ticket ON messages (ticket_id, created_at);

-- Append-only audit trail: every state change and every staff or admin action.
CREATE TABLE events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ticket_id   BLOB REFERENCES tickets (id),
    job_id      BLOB,
    actor_id    BLOB,
    actor_role  TEXT NOT NULL CHECK (actor_role IN ('customer', 'staff', 'admin', 'system')),
    action      TEXT NOT NULL,
    from_state  TEXT,
    to_state    TEXT,
    detail      TEXT NOT NULL DEFAULT '',
    created_at  TEXT NOT NULL
);
CREATE INDEX events_ticket ON events (ticket_id, id);

CREATE TABLE restore_jobs (
    id                  BLOB PRIMARY KEY,
    ticket_id           BLOB NOT NULL UNIQUE REFERENCES tickets (id),  -- one approval, one job
    source_cluster_id   BLOB NOT NULL REFERENCES clusters (id),
    target_time         TEXT NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('queued', 'provisioning', 'restoring_snapshot', 'replaying_log', 'verifying', 'finalizing', 'succeeded', 'failing', 'cancelling', 'failed', 'cancelled')),
    run                 INTEGER NOT NULL DEFAULT 1,   -- bumped when staff retry a failed job
    attempt             INTEGER NOT NULL DEFAULT 1,   -- attempt of the current step
    run_after           TEXT NOT NULL,                -- not before: backoff between attempts
    new_cluster_id      BLOB NOT NULL,
    snapshot_id         TEXT,
    snapshot_finished_at TEXT,
    zone                TEXT CHECK (zone IN ('az1', 'az2', 'az3')),
    progress            INTEGER NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 100),
    step_detail         TEXT NOT NULL DEFAULT '',
    -- The lease: a worker owns the job until lease_expires_at. lease_token
    -- grows at every claim and fences every write a worker makes.
    lease_owner         TEXT,
    lease_token         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at    TEXT,
    last_error_code     TEXT,
    last_error          TEXT,
    step_started_at     TEXT NOT NULL,
    progress_at         TEXT NOT NULL,
    stalled_since       TEXT,
    reached_point       TEXT,
    verification_report TEXT,                         -- JSON
    created_at          TEXT NOT NULL,
    updated_at          TEXT NOT NULL,
    finished_at         TEXT
);
CREATE INDEX restore_jobs_runnable ON restore_jobs (run_after)
    WHERE state NOT IN ('succeeded', 'failed', 'cancelled');

-- Emails written in the same transaction as the change that causes them.
CREATE TABLE outbox (
    id              BLOB PRIMARY KEY,               -- also the Message-ID's local part
    dedupe_key      TEXT NOT NULL UNIQUE,
    ticket_id       BLOB REFERENCES tickets (id),
    kind            TEXT NOT NULL,
    recipient       TEXT NOT NULL,
    subject         TEXT NOT NULL,
    text_body       TEXT NOT NULL,
    html_body       TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,            -- when due: the next try, or when a claim runs out
    claimed_until   TEXT,                           -- a sender's claim; expired claims are taken again
    last_error      TEXT,
    created_at      TEXT NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status IN ('pending', 'sending');
CREATE INDEX outbox_recent ON outbox (created_at);

-- Periodic duties (automatic backups, expiry, deadline warnings, the stall
-- watchdog) run in one process at a time: whoever holds the lease.
CREATE TABLE duty_leases (
    name        TEXT PRIMARY KEY,
    owner       TEXT NOT NULL,
    expires_at  TEXT NOT NULL
);
