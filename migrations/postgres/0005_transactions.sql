-- What the desk knew of a cluster's relations, by file: the archived log
-- names relations by file number only, and a dropped table is no longer in
-- its cluster's catalog.
CREATE TABLE relation_names (
    cluster_id    UUID NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    database_oid  BIGINT NOT NULL,
    relfilenode   BIGINT NOT NULL,
    schema_name   TEXT NOT NULL,
    relation_name TEXT NOT NULL,
    is_table      BOOLEAN NOT NULL,
    seen_at       TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (cluster_id, database_oid, relfilenode)
);

-- The simulated fleet's log beyond its steady traffic: transactions put
-- there on purpose, such as the demo's dropped table.
CREATE TABLE sandbox_transactions (
    cluster_id   UUID NOT NULL REFERENCES clusters (id) ON DELETE CASCADE,
    xid          BIGINT NOT NULL,
    committed_at TIMESTAMPTZ NOT NULL,
    body         JSONB NOT NULL,
    PRIMARY KEY (cluster_id, xid)
);
CREATE INDEX sandbox_transactions_time ON sandbox_transactions (cluster_id, committed_at);
