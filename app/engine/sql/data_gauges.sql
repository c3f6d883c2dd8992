-- Numbers for a metrics scrape (app.engine.data_gauges) beside the queue's (gauges.py).

-- name: backfill_partitions
-- The partitions of the backfills still in progress (some execution active), by the
-- state of their execution now, or their outcome when they have none (no_source).
WITH live AS (
    SELECT DISTINCT i.backfill_id FROM backfill_items i
    JOIN executions e ON e.id = i.execution_id
    WHERE e.status IN ('pending', 'queued', 'running')
)
SELECT COALESCE(CASE WHEN e.id IS NOT NULL THEN e.status
                     WHEN i.execution_id IS NOT NULL
                     THEN COALESCE(m.execution_status, 'pruned') END,
                i.outcome) AS state, count(*) AS n
FROM backfill_items i
JOIN live ON live.backfill_id = i.backfill_id
JOIN backfills b ON b.id = i.backfill_id
LEFT JOIN executions_all e ON e.id = i.execution_id  -- finished ones may be in the history
LEFT JOIN dataset_materializations m  -- or pruned: as sql/backfills.sql "items" says
    ON e.id IS NULL AND m.dataset = b.dataset AND m.partition_key = i.partition_key
   AND m.execution_id = i.execution_id
GROUP BY 1

-- name: slots_skipped
-- Every schedule's slots skipped since it was created (a counter: skips are never pruned
-- while their schedule exists).
SELECT s.name, COALESCE(sum(k.slots), 0) AS slots
FROM schedules s LEFT JOIN schedule_skips k ON k.schedule_id = s.id
GROUP BY s.name
