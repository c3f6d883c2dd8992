-- Backfills (app.engine.backfills): a range of a dataset's partitions, one execution each.

-- name: lock_dataset
-- Backfills and scans of one dataset take turns from their look at the partitions to
-- their commit, so two of them never both decide that a partition needs an execution.
SELECT pg_advisory_xact_lock(hashtext('backfill:' || %(dataset)s))

-- name: requested_at
SELECT clock_timestamp() AS at

-- name: identical_since
-- An identical backfill that finished submitting after this one was asked for: the two
-- ran at once, and this one joins it instead of submitting again.
SELECT id FROM backfills
WHERE dataset = %(dataset)s AND from_key = %(from_key)s AND to_key = %(to_key)s
  AND only_states = %(only)s AND key2 IS NOT DISTINCT FROM %(second)s
  AND created_at >= %(requested_at)s
ORDER BY created_at LIMIT 1

-- name: insert
-- Written last in its transaction: created_at (the clock at that moment) is when it
-- finished submitting, which `identical_since` compares with.
INSERT INTO backfills (id, dataset, from_key, to_key, only_states, key2, created_at)
VALUES (%(id)s, %(dataset)s, %(from_key)s, %(to_key)s, %(only)s, %(second)s, clock_timestamp())
RETURNING id, dataset, from_key, to_key, only_states, key2, created_at, cancelled_at

-- name: insert_items
INSERT INTO backfill_items (backfill_id, partition_key, outcome, execution_id)
SELECT %(id)s, key, outcome, execution_id
FROM json_to_recordset(%(items)s::json) AS i (key text, outcome text, execution_id text)

-- name: get
SELECT id, dataset, from_key, to_key, only_states, key2, created_at, cancelled_at
FROM backfills WHERE id = %(id)s

-- name: list_page
-- The newest backfills with their items counted by their executions' statuses now (by
-- outcome where an item has no execution; a pruned execution as `items` says), in one
-- statement for the whole page.
SELECT b.id, b.dataset, b.from_key, b.to_key, b.only_states, b.key2, b.created_at,
       b.cancelled_at, coalesce(progress.counts, '{}') AS counts
FROM backfills b
LEFT JOIN LATERAL (
    SELECT jsonb_object_agg(state, n) AS counts
    FROM (
        SELECT coalesce(CASE WHEN e.id IS NOT NULL THEN e.status
                             WHEN i.execution_id IS NOT NULL
                             THEN coalesce(m.execution_status, 'pruned') END,
                        i.outcome) AS state, count(*) AS n
        FROM backfill_items i
        LEFT JOIN executions_all e ON e.id = i.execution_id
        LEFT JOIN dataset_materializations m
            ON e.id IS NULL AND m.dataset = b.dataset AND m.partition_key = i.partition_key
           AND m.execution_id = i.execution_id
        WHERE i.backfill_id = b.id
        GROUP BY 1
    ) AS by_state
) AS progress ON true
WHERE (%(dataset)s::text IS NULL OR b.dataset = %(dataset)s)
ORDER BY b.created_at DESC, b.id DESC
LIMIT %(limit)s

-- name: items
-- Its items with their executions' statuses now, in either tier. An execution pruned
-- since (no foreign key holds it) ended as the materialization it recorded for the
-- item's partition says (one index probe: the partition and the execution); without
-- one, how it ended is gone with it: `pruned`, never its outcome (`submitted`) again.
SELECT i.partition_key, i.outcome, i.execution_id,
       CASE WHEN e.id IS NOT NULL THEN e.status
            WHEN i.execution_id IS NOT NULL THEN coalesce(m.execution_status, 'pruned')
       END AS execution_status
FROM backfill_items i
JOIN backfills b ON b.id = i.backfill_id
LEFT JOIN executions_all e ON e.id = i.execution_id
LEFT JOIN dataset_materializations m
    ON e.id IS NULL AND m.dataset = b.dataset AND m.partition_key = i.partition_key
   AND m.execution_id = i.execution_id
WHERE i.backfill_id = %(id)s
ORDER BY i.partition_key

-- name: mark_cancelled
UPDATE backfills SET cancelled_at = COALESCE(cancelled_at, now()) WHERE id = %(id)s
RETURNING id

-- name: active_items
-- The executions of a backfill still active: what its cancel asks to stop. Held ones
-- too, not only pending: a held attempt that failed went back to pending to retry,
-- never asked to stop (what runs finishes; what would run again must not).
SELECT e.id FROM backfill_items i JOIN executions e ON e.id = i.execution_id
WHERE i.backfill_id = %(id)s AND e.status IN ('pending', 'queued', 'running')
ORDER BY e.id
