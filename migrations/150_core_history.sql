-- Issue 32: history apart from the queue (docs/architecture.md, "History";
-- docs/operations.md, "History and retention").
--
-- `executions` (the hot table) keeps what is pending, held or running and what
-- finished within SPINE_HISTORY_MOVE_AFTER. The pools move what finished
-- before that, with its events, into the two tables below, in batches of one
-- statement each (app.engine.archive). They are a storage tier, not a second
-- lifecycle: a row there is a finished execution, and a manual retry moves it
-- back, same id, in one statement.
--
-- Both are partitioned by RANGE on the execution's created_at, one table
-- partition per UTC day. The code and the docs call those "segments" (a
-- "partition" is a dataset's). A segment is created ahead and dropped whole by
-- retention (app.engine.segments), so pruning costs a catalog change and gives
-- the disk back at once. An execution's events sit in the segment of the
-- execution's own created_at (not of their timestamp), so a drop takes an
-- execution and all its events together.
--
-- This file only creates structure: the runner applies it in one transaction,
-- and the executions already stored move in the background, from the pools,
-- in the same batches as any others. No segment is created here either; the
-- pools create them before they move anything.

CREATE TABLE executions_history (
    id                    TEXT NOT NULL,
    pipeline              TEXT NOT NULL,
    params                JSONB NOT NULL,
    lane                  TEXT NOT NULL,
    trigger_source        TEXT NOT NULL,
    logical_key           TEXT,
    status                TEXT NOT NULL CHECK (status IN ('completed', 'failed', 'cancelled')),
    backend               TEXT NOT NULL,
    backend_run_id        TEXT,
    attempt               INTEGER NOT NULL,
    worker_id             TEXT,
    cancel_requested      BOOLEAN NOT NULL,
    created_at            TIMESTAMPTZ NOT NULL,
    queued_at             TIMESTAMPTZ,
    started_at            TIMESTAMPTZ,
    completed_at          TIMESTAMPTZ,
    error                 TEXT,
    max_attempts          INTEGER NOT NULL,
    retry_backoff_seconds DOUBLE PRECISION NOT NULL,
    available_at          TIMESTAMPTZ NOT NULL,
    timeout_seconds       DOUBLE PRECISION,
    overrides             JSONB NOT NULL,
    -- A unique key must hold the segment key. The id alone is unique across both
    -- tiers by design: a uuid made by app.engine.executions.new_id (or the column's
    -- default), and a row is in one tier at a time (every move is one statement).
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);

-- Listing newest first pages by (created_at DESC, id): the primary key, backwards.
-- A look-up by id alone (GET /executions/{id}) probes each segment's id index.
CREATE INDEX idx_executions_history_id ON executions_history (id);
-- A partition's last execution by its logical key (sql/datasets.sql, lineage).
CREATE INDEX idx_executions_history_logical_key ON executions_history (logical_key, created_at DESC)
    WHERE logical_key IS NOT NULL;

CREATE TABLE execution_events_history (
    -- The segment key: the execution's created_at, so its events share its segment.
    execution_created_at TIMESTAMPTZ NOT NULL,
    id                   BIGINT NOT NULL,   -- kept from execution_events: one order per execution
    execution_id         TEXT NOT NULL,
    event_type           TEXT NOT NULL,
    timestamp            TIMESTAMPTZ NOT NULL,
    payload              JSONB NOT NULL,
    idempotency_key      TEXT,
    PRIMARY KEY (execution_created_at, id),
    CONSTRAINT execution_events_history_idempotency_key_scoped
        CHECK (idempotency_key IS NULL OR starts_with(idempotency_key, execution_id || ':'))
) PARTITION BY RANGE (execution_created_at);

CREATE INDEX idx_events_history_execution ON execution_events_history (execution_id, id);

-- The events' idempotency key stays unique by its own design, not by an index
-- over both tiers (PostgreSQL has none; a unique key of the history table must
-- hold the segment key): a key is scoped to its execution (it starts with the
-- execution's id and a colon, checked on both tables), and an execution's
-- events are always all in one tier with it (moved with it in the same
-- statement, both ways). So two events with one key would belong to one
-- execution and sit in one tier, and in the hot tier, the only one written to,
-- idx_events_idempotency_key refuses the second. NOT VALID: the table is not
-- scanned here (nothing has ever written a key); new rows are checked.
ALTER TABLE execution_events
    ADD CONSTRAINT execution_events_idempotency_key_scoped
    CHECK (idempotency_key IS NULL OR starts_with(idempotency_key, execution_id || ':')) NOT VALID;

-- One logical history: what every read of "an execution, wherever it is" goes
-- through (app.engine.history; the lineage and backfill joins). A statement sees
-- one snapshot, and a row moves between tiers in one statement, so a read sees
-- each execution once. Predicates and keyset orders are pushed into both branches
-- (an ordered merge of the two indexes on created_at; segments are pruned).
CREATE VIEW executions_all AS
SELECT id, pipeline, params, lane, trigger_source, logical_key, status, backend, backend_run_id,
       attempt, worker_id, cancel_requested, created_at, queued_at, started_at, completed_at,
       error, max_attempts, retry_backoff_seconds, available_at, timeout_seconds, overrides
FROM executions
UNION ALL
SELECT id, pipeline, params, lane, trigger_source, logical_key, status, backend, backend_run_id,
       attempt, worker_id, cancel_requested, created_at, queued_at, started_at, completed_at,
       error, max_attempts, retry_backoff_seconds, available_at, timeout_seconds, overrides
FROM executions_history;
