-- One row per worker process start. A live worker keeps heartbeat_at fresh;
-- executions held by a worker whose heartbeat is older than the lease are recovered.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    heartbeat_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_at   TIMESTAMPTZ
);

CREATE INDEX idx_workers_live ON workers (heartbeat_at) WHERE stopped_at IS NULL;

ALTER TABLE workers SET (autovacuum_vacuum_scale_factor = 0.05);
