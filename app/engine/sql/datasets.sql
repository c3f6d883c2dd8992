-- Datasets (app.engine.partitions): materializations, and the state of partitions
-- computed from them, set-based, in the words of app.engine.datasets.PARTITION_STATES.

-- name: lock_partition
-- Materializations of one partition take turns, so each supersedes the one before.
SELECT pg_advisory_xact_lock(hashtext('dataset:' || %(dataset)s || ':' || %(key)s))

-- name: record
-- A materialization, superseding the partition's newest; its content changed when
-- there was none before, its sha256 differs, or rows were inserted, changed or removed.
WITH prev AS (
    SELECT id, source_sha256 FROM dataset_materializations
    WHERE dataset = %(dataset)s AND partition_key = %(key)s
    ORDER BY id DESC LIMIT 1
)
INSERT INTO dataset_materializations (
    dataset, partition_key, outcome, execution_id, execution_status, load_id,
    inserted, changed, removed, unchanged, rejected,
    source_path, source_url, source_bytes, source_sha256, source_mtime, source_validators,
    content_changed, superseded_id)
SELECT %(dataset)s, %(key)s, %(outcome)s, %(execution_id)s, %(execution_status)s, %(load_id)s,
       %(inserted)s, %(changed)s, %(removed)s, %(unchanged)s, %(rejected)s,
       %(source_path)s, %(source_url)s, %(source_bytes)s, %(sha)s, %(source_mtime)s,
       %(source_validators)s,
       prev.id IS NULL
           OR (%(sha)s::text IS NOT NULL
               AND prev.source_sha256 IS DISTINCT FROM %(sha)s)
           OR %(inserted)s::bigint + %(changed)s::bigint + %(removed)s::bigint > 0,
       prev.id
FROM (SELECT 1) AS one LEFT JOIN prev ON true
-- The index's own predicate: an execution's second record of a partition is none.
ON CONFLICT (dataset, partition_key, execution_id) WHERE execution_id IS NOT NULL DO NOTHING
RETURNING id, content_changed, superseded_id

-- name: states
-- The state of each partition given (key, due_at, late_at, closed records), newest
-- materialization and last execution by logical key; `upstreams` is the dataset's
-- upstreams as [{"dataset": ..., "mapping": "same_key" | "all_keys_of_date"}].
-- A partition whose upstream partition changed after its own materialization is
-- `stale`, never `loaded`.
WITH p AS (
    -- One JSON document (msgspec writes it in C, app.engine.partitions.partitions_doc):
    -- separate arrays of keys and times cost the client more to adapt than the
    -- statement costs to run.
    -- `closed`: a trading-days dataset's partition on a market holiday, `no_data` unless
    -- something was recorded or runs for it.
    -- `n`: the document's order, the answer's (a key's text order depends on collation).
    SELECT * FROM ROWS FROM (
        json_to_recordset(%(partitions)s::json)
            AS (key text, due_at timestamptz, late_at timestamptz, closed boolean)
    ) WITH ORDINALITY AS p (key, due_at, late_at, closed, n)
), up AS (
    SELECT * FROM json_to_recordset(%(upstreams)s::json) AS u (dataset text, mapping text)
), last AS (
    SELECT DISTINCT ON (partition_key) partition_key, id, outcome, materialized_at,
           execution_id
    FROM dataset_materializations
    WHERE dataset = %(dataset)s AND partition_key IN (SELECT key FROM p)
    ORDER BY partition_key, id DESC
), ex AS (
    -- Both tiers (the executions_all view): a partition's last execution may have
    -- finished long ago and moved to the history. `IS NOT NULL` is implied by the
    -- equality; said, the planner estimates the rows from the column's statistics
    -- (the indexes are partial on it). Without it, it counted every row of every
    -- history segment, and a cost that high had the statement JIT-compiled on each
    -- run (114 ms at 4M executions: most of a metrics scrape). (A range of this
    -- dataset's keys, tried too, turned the plan into 32 index probes per partition.)
    SELECT DISTINCT ON (logical_key) logical_key, id, status, created_at
    FROM executions_all
    WHERE logical_key IS NOT NULL
      AND logical_key = ANY (SELECT 'dataset:' || %(dataset)s || ':' || key FROM p)
    ORDER BY logical_key, created_at DESC
)
SELECT p.key, p.due_at, p.late_at, last.id AS materialization_id,
       last.materialized_at, ex.id AS execution_id,
       CASE
           WHEN ex.status = 'running' THEN 'running'
           WHEN ex.status IN ('pending', 'queued', 'running') THEN 'pending'
           WHEN ex.status = 'failed'
                AND (last.id IS NULL OR ex.created_at > last.materialized_at) THEN 'failed'
           WHEN last.outcome = 'no_data' THEN 'no_data'
           WHEN last.id IS NOT NULL AND EXISTS (
               SELECT 1 FROM up JOIN dataset_materializations u ON u.dataset = up.dataset
               WHERE u.content_changed AND u.id > last.id
                 -- one load that records both (OTC's trades and metrics) is not a change
                 AND coalesce(u.execution_id <> last.execution_id, true)
                 AND CASE up.mapping
                         WHEN 'same_key' THEN u.partition_key = p.key
                         ELSE u.partition_key = split_part(p.key, '/', 1)
                              OR u.partition_key LIKE split_part(p.key, '/', 1) || '/%%'
                     END
           ) THEN 'stale'
           WHEN last.id IS NOT NULL THEN 'loaded'
           WHEN p.closed THEN 'no_data'
           WHEN %(now)s::timestamptz < p.due_at THEN 'not_due'
           WHEN %(now)s::timestamptz < p.late_at THEN 'missing'
           ELSE 'late'
       END AS state
FROM p
LEFT JOIN last ON last.partition_key = p.key
LEFT JOIN ex ON ex.logical_key = 'dataset:' || %(dataset)s || ':' || p.key
ORDER BY p.n

-- name: materializations
-- A partition's materializations, newest first (its lineage).
SELECT id, dataset, partition_key, outcome, execution_id, execution_status, load_id,
       inserted, changed, removed, unchanged, rejected,
       source_path, source_url, source_bytes, source_sha256, source_mtime, source_validators,
       content_changed, materialized_at, superseded_id
FROM dataset_materializations
WHERE dataset = %(dataset)s AND partition_key = %(key)s
ORDER BY id DESC
LIMIT %(limit)s

-- name: latest_sources
-- Each partition's newest materialization's source, for a scan's comparisons.
SELECT DISTINCT ON (partition_key) partition_key, source_path, source_bytes, source_sha256,
       source_mtime
FROM dataset_materializations
WHERE dataset = %(dataset)s
ORDER BY partition_key, id DESC


-- name: stale_candidates
-- The partitions of a dataset whose newest materialization is older than a changed
-- materialization of a mapped upstream partition (`states` decides which are stale
-- now: one being re-materialized is pending or running instead).
WITH d AS (
    SELECT DISTINCT ON (partition_key) partition_key, id, execution_id
    FROM dataset_materializations
    WHERE dataset = %(dataset)s
    ORDER BY partition_key, id DESC
)
SELECT d.partition_key FROM d
WHERE EXISTS (
    SELECT 1
    FROM json_to_recordset(%(upstreams)s::json) AS up (dataset text, mapping text)
    JOIN dataset_materializations u ON u.dataset = up.dataset
    WHERE u.content_changed AND u.id > d.id
      AND coalesce(u.execution_id <> d.execution_id, true)  -- not by the same load
      AND CASE up.mapping
              WHEN 'same_key' THEN u.partition_key = d.partition_key
              ELSE u.partition_key = split_part(d.partition_key, '/', 1)
                   OR u.partition_key LIKE split_part(d.partition_key, '/', 1) || '/%%'
          END
)
ORDER BY d.partition_key

-- name: first_candidates
-- The partitions of a dataset never materialized whose mapped upstream partition has
-- been (`propagate` then asks whether every upstream partition of each is ready).
SELECT DISTINCT CASE up.mapping WHEN 'same_key' THEN u.partition_key
                    ELSE split_part(u.partition_key, '/', 1) END AS partition_key
FROM json_to_recordset(%(upstreams)s::json) AS up (dataset text, mapping text)
JOIN dataset_materializations u ON u.dataset = up.dataset
WHERE u.outcome <> 'no_data'
  AND NOT EXISTS (
      SELECT 1 FROM dataset_materializations d
      WHERE d.dataset = %(dataset)s
        AND d.partition_key = CASE up.mapping WHEN 'same_key' THEN u.partition_key
                                  ELSE split_part(u.partition_key, '/', 1) END
  )
ORDER BY 1

-- name: backend_of
-- The backend of the execution that recorded a change (its propagation pass runs there).
SELECT backend FROM executions WHERE id = %(id)s

-- name: propagates
-- Whether a dataset re-materializes by itself downstream of this one.
SELECT EXISTS (
    SELECT 1 FROM dataset_upstreams WHERE upstream = %(dataset)s AND propagate
) AS propagates

-- name: lock_sync
-- Concurrent `spine db init`s take turns syncing the datasets.
SELECT pg_advisory_xact_lock(hashtext('spine:datasets-sync'))

-- name: clear_graph
DELETE FROM dataset_upstreams

-- name: sync_graph
-- The dependency graph as declared now (after clear_graph, in one transaction).
INSERT INTO dataset_upstreams (dataset, upstream, mapping, propagate)
SELECT dataset, upstream, mapping, propagate
FROM json_to_recordset(%(edges)s::json)
    AS e (dataset text, upstream text, mapping text, propagate boolean)
