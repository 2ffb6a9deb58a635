-- Sends, not claims: `attempts` counts delivery attempts that reached the
-- transport; `claim` is the fencing token a sender's claim holds, bumped at
-- every claim, so a sender whose claim was taken over cannot settle.
ALTER TABLE outbox ADD COLUMN claim BIGINT NOT NULL DEFAULT 0;
UPDATE outbox SET claim = attempts;

-- Bumped when an account is disabled or its password changes: a session
-- signed in before carries the old value and is over for good, even if the
-- account is enabled again.
ALTER TABLE users ADD COLUMN session_epoch BIGINT NOT NULL DEFAULT 0;

-- Readiness writes here: a store that answers reads but cannot write (a
-- full disk) is not ready.
CREATE TABLE readiness_probes (
    owner       TEXT PRIMARY KEY,
    checked_at  TEXT NOT NULL
);
