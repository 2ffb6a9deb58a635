-- Places notices are posted to besides email: a subscription's signed
-- webhooks, and staff's webhooks and team chats (no subscription).
-- Secrets are not stored: each is derived from the desk's secret key, the
-- endpoint's id and its secret version, and shown once.
CREATE TABLE endpoints (
    id                    BLOB PRIMARY KEY,
    subscription_id       BLOB REFERENCES subscriptions (id),  -- NULL: staff's
    owner_id              BLOB NOT NULL REFERENCES users (id), -- told when it is disabled
    kind                  TEXT NOT NULL CHECK (kind IN ('webhook', 'slack', 'teams')),
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,                     -- event types, space-separated
    secret_version        BIGINT NOT NULL DEFAULT 1,
    previous_secret_until TEXT,                      -- the version before signs too until then
    disabled_at           TEXT,
    disabled_reason       TEXT,
    created_at            TEXT NOT NULL
);
CREATE INDEX endpoints_subscription ON endpoints (subscription_id);

-- An outbox row with an endpoint is a post to it: `recipient` is its URL
-- when written, `subject` the event type, `text_body` the exact JSON body.
ALTER TABLE outbox ADD COLUMN endpoint_id BLOB REFERENCES endpoints (id);
CREATE INDEX outbox_endpoint ON outbox (endpoint_id, created_at) WHERE endpoint_id IS NOT NULL;

-- Keys the desk generates for itself when none is configured: the key
-- endpoint secrets are derived from, unless SECRET_KEY is set.
CREATE TABLE desk_secrets (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL
);

-- The customer's verdict on a hand-over, given once: is the restored data
-- right, and how was the help. "Not right" also reopens the ticket.
CREATE TABLE verdicts (
    ticket_id       BLOB PRIMARY KEY REFERENCES tickets (id),
    requester_id    BLOB NOT NULL REFERENCES users (id),
    engineer_id     BLOB REFERENCES users (id),   -- who worked it, for ratings by engineer
    data_right      BOOLEAN NOT NULL,
    comment         TEXT,
    rating          INTEGER NOT NULL CHECK (rating BETWEEN 1 AND 5),
    rating_comment  TEXT,
    channel         TEXT NOT NULL CHECK (channel IN ('desk', 'email_link')),
    given_at        TEXT NOT NULL
);
CREATE INDEX verdicts_given ON verdicts (given_at);
