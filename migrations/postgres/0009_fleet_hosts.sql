-- The fleet across hosts. Each host is a machine of the fleet with a role:
-- a source runs customers' clusters, a zone keeps one zone's pgBackRest
-- repository and serves it over TLS, a restore host runs restores. The
-- list comes from FLEET_CONFIG at start and from the admin pages and API.
CREATE TABLE fleet_hosts (
    name          TEXT PRIMARY KEY,
    role          TEXT NOT NULL CHECK (role IN ('source', 'zone', 'restore')),
    -- The DNS name others reach it by (pgBackRest checks certificates by name).
    address       TEXT NOT NULL,
    -- A zone host's zone: one host per zone.
    zone          TEXT CHECK (zone IN ('az1', 'az2', 'az3')),
    -- Where the host's desk process keeps its files (FLEET_DIR there).
    data_root     TEXT,
    -- A restore host's limit of restores at once.
    max_restores  BIGINT CHECK (max_restores IS NULL OR max_restores >= 1),
    tls_port      BIGINT NOT NULL DEFAULT 8432 CHECK (tls_port BETWEEN 1 AND 65535),
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CHECK ((role = 'zone') = (zone IS NOT NULL))
);
CREATE UNIQUE INDEX fleet_hosts_zone ON fleet_hosts (zone) WHERE zone IS NOT NULL;

-- What each host's worker last said of itself: a host not heard from for
-- HOST_LOST_SECONDS is lost, and another takes over its restores.
CREATE TABLE host_heartbeats (
    host          TEXT PRIMARY KEY,
    worker        TEXT NOT NULL,
    seen_at       TIMESTAMPTZ NOT NULL,
    free_bytes    BIGINT,
    max_restores  BIGINT NOT NULL
);

-- Where a cluster lives in a fleet across hosts, for clusters registered
-- from outside the desk and clusters restored onto a restore host. NULL
-- columns mean the single-machine fleet's own layout.
ALTER TABLE clusters
    ADD COLUMN stanza TEXT,
    ADD COLUMN fleet_host TEXT,
    ADD COLUMN data_directory TEXT,
    ADD COLUMN socket_directory TEXT,
    ADD COLUMN backrest_config TEXT,
    ADD COLUMN adopted_at TIMESTAMPTZ;
CREATE UNIQUE INDEX clusters_stanza ON clusters (stanza) WHERE stanza IS NOT NULL;
