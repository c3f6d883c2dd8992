-- Issue 26: datasets and partitions. Every materialization of a partition is
-- a row (app.engine.partitions); a partition's state is computed from these
-- rows and the executions holding its logical key (sql/datasets.sql).
--
-- The execution's id and status are plain values, with no foreign key:
-- execution history may move or be pruned, and a partition's state must never
-- depend on finding its execution.

CREATE TABLE dataset_materializations (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dataset            TEXT NOT NULL,
    partition_key      TEXT NOT NULL,            -- 2025-12-15, 2022-12a, 2025-12-15/OTC
    outcome            TEXT NOT NULL DEFAULT 'loaded' CHECK (outcome IN ('loaded', 'no_data')),
    execution_id       TEXT,
    execution_status   TEXT,                     -- as the materializing execution ended
    load_id            BIGINT,                   -- the domain's load (finra_loads, otc_loads)
    inserted           BIGINT NOT NULL DEFAULT 0,
    changed            BIGINT NOT NULL DEFAULT 0,
    removed            BIGINT NOT NULL DEFAULT 0,
    unchanged          BIGINT NOT NULL DEFAULT 0,
    rejected           BIGINT NOT NULL DEFAULT 0,
    source_path        TEXT,                     -- relative to SPINE_DATA_DIR
    source_url         TEXT,
    source_bytes       BIGINT,
    source_sha256      TEXT,
    source_mtime       TIMESTAMPTZ,
    source_validators  JSONB,                    -- a remote source's ETag, Last-Modified
    -- Its content differs from the one it superseded (another sha256, or rows
    -- inserted, changed or removed): what turns downstream partitions stale.
    content_changed    BOOLEAN NOT NULL,
    materialized_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    superseded_id      BIGINT                    -- the partition's materialization before it
);

-- A partition's newest materialization; a dataset's partitions in key order.
CREATE INDEX idx_dataset_materializations_partition
    ON dataset_materializations (dataset, partition_key text_pattern_ops, id DESC);

-- An execution records a partition once: a retry of one whose work committed (a worker
-- killed before its end was written) finds its materialization already there.
CREATE UNIQUE INDEX idx_dataset_materializations_execution
    ON dataset_materializations (dataset, partition_key, execution_id)
    WHERE execution_id IS NOT NULL;

-- A partition's last finished execution (failed or not), found by its logical key.
CREATE INDEX idx_executions_logical_key_created
    ON executions (logical_key, created_at DESC) WHERE logical_key IS NOT NULL;

-- A backfill: a range of a dataset's partitions to materialize, a row to follow.
CREATE TABLE backfills (
    id            TEXT PRIMARY KEY,
    dataset       TEXT NOT NULL,
    from_key      TEXT NOT NULL,
    to_key        TEXT NOT NULL,
    only_states   TEXT NOT NULL CHECK (only_states IN ('missing', 'failed', 'stale', 'all')),
    key2          TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    cancelled_at  TIMESTAMPTZ
);

-- One row per partition of the range that needed something: the execution
-- created (or found holding the partition's logical key), or `no_source`.
CREATE TABLE backfill_items (
    backfill_id    TEXT NOT NULL REFERENCES backfills (id) ON DELETE CASCADE,
    partition_key  TEXT NOT NULL,
    outcome        TEXT NOT NULL CHECK (outcome IN ('submitted', 'joined', 'no_source')),
    execution_id   TEXT,
    PRIMARY KEY (backfill_id, partition_key)
);

-- The datasets' dependency graph as the app declares it, written by `spine db init`
-- (app.engine.sensors.sync): a load that changed a partition asks for propagation only
-- when some dataset downstream of it re-materializes by itself.
CREATE TABLE dataset_upstreams (
    dataset    TEXT NOT NULL,
    upstream   TEXT NOT NULL,
    mapping    TEXT NOT NULL CHECK (mapping IN ('same_key', 'all_keys_of_date')),
    propagate  BOOLEAN NOT NULL,
    PRIMARY KEY (dataset, upstream)
);
CREATE INDEX idx_dataset_upstreams_upstream ON dataset_upstreams (upstream);
