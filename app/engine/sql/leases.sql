-- Leases (app.engine.leases): what a worker does to the executions it holds, besides
-- the batch's ends (batches.sql). Every change is guarded by "still held by me".

-- name: requeue
-- A held execution back to the queue (a transient failure), the attempt counted.
WITH r AS (
    UPDATE executions
    SET status = 'pending', worker_id = NULL, queued_at = NULL, started_at = NULL
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN ('queued', 'running')
    RETURNING id, attempt
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'requeued', %(payload)s || jsonb_build_object('attempt', attempt) FROM r
)
SELECT id, pg_notify('spine_executions', 'requeued') AS n FROM r

-- name: release_held
-- Back to pending, the attempt not counted; one whose cancel was requested
-- meanwhile ends cancelled instead (it never ran).
WITH r AS (
    UPDATE executions
    SET status = CASE WHEN cancel_requested THEN 'cancelled' ELSE 'pending' END,
        worker_id = CASE WHEN cancel_requested THEN worker_id END,
        queued_at = CASE WHEN cancel_requested THEN queued_at END,
        started_at = CASE WHEN cancel_requested THEN started_at END,
        completed_at = CASE WHEN cancel_requested THEN now() END,
        -- A claim that started it counted the attempt; one only queued did not.
        attempt = attempt - (status = 'running')::int
    WHERE worker_id = %(worker)s AND status IN ('queued', 'running')
      AND (%(ids)s::text[] IS NULL OR id = ANY (%(ids)s::text[]))
    RETURNING id, status, attempt
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, CASE status WHEN 'pending' THEN 'requeued' ELSE status END,
           jsonb_build_object('reason', %(reason)s::text, 'attempt', attempt)
    FROM r
)
SELECT id, pg_notify('spine_executions', 'requeued') AS n FROM r

-- name: progress
-- A progress event, written only while held; says whether a cancel was requested.
WITH held AS (
    SELECT id, cancel_requested FROM executions
    WHERE id = %(id)s AND worker_id = %(worker)s AND status IN ('queued', 'running')
), p AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'progress', %(payload)s FROM held
)
SELECT
    EXISTS (SELECT 1 FROM held) AS held,
    COALESCE((SELECT cancel_requested FROM held), false) AS cancel_requested

-- name: claim_state
SELECT
    COALESCE(bool_or(worker_id = %(worker)s AND status IN ('queued', 'running')), false)
        AS held,
    COALESCE(bool_or(cancel_requested), false) AS cancel_requested
FROM executions WHERE id = %(id)s
