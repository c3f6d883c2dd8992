-- Executions (app.engine.executions): insert and cancel. Every status
-- change and its event are one statement (data-modifying CTEs): they commit together.

-- name: insert
-- Pending executions with their `created` events, from a JSON recordset: one or many.
-- `json`, not `jsonb`: the document is read once, so it is not worth converting
-- whole (one submit at a time measured about 8 per cent slower with jsonb than the
-- single-row VALUES insert before it, and within the run-to-run spread with json).
WITH sent AS (
    SELECT * FROM ROWS FROM (json_to_recordset(%(rows)s::json) AS (
        id text, pipeline text, params jsonb, lane text, trigger_source text, logical_key text,
        max_attempts int, retry_backoff_seconds float8, timeout_seconds float8, overrides jsonb,
        run_at timestamptz, delay_seconds float8, event jsonb, backend text
    )) WITH ORDINALITY AS v (id, pipeline, params, lane, trigger_source, logical_key,
                             max_attempts, retry_backoff_seconds, timeout_seconds, overrides,
                             run_at, delay_seconds, event, backend, n)
), v AS (
    -- The claim's order (seq) is the order sent, taken here, before the rows are
    -- inserted in logical_key order (see below).
    SELECT *, nextval('executions_seq_seq') AS seq
    FROM sent ORDER BY n
), new AS (
    INSERT INTO executions (id, pipeline, params, lane, trigger_source, logical_key,
                            max_attempts, retry_backoff_seconds, timeout_seconds, overrides,
                            available_at, backend, seq)
    OVERRIDING SYSTEM VALUE
    SELECT id, pipeline, params, lane, trigger_source, logical_key,
           max_attempts, retry_backoff_seconds, timeout_seconds, overrides,
           -- On the database clock; a time in the past means now (it keeps its turn).
           greatest(now(), COALESCE(run_at, now()) + make_interval(secs => delay_seconds)),
           backend, seq
    -- Keyed rows in key order: two concurrent inserts that share keys wait on each
    -- other's in one order, never in a cycle (a deadlock).
    FROM v ORDER BY logical_key, n
    ON CONFLICT (logical_key)
        -- The partial unique index's own predicate, so the conflict target matches it.
        WHERE logical_key IS NOT NULL AND status IN ('pending', 'queued', 'running')
        DO NOTHING
    RETURNING id, trigger_source, lane, created_at, available_at
), created AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT new.id, 'created', jsonb_build_object('trigger_source', new.trigger_source,
                                                 'lane', new.lane)
        || CASE WHEN new.available_at > now()
                THEN jsonb_build_object('run_at', new.available_at) ELSE '{}' END
        || v.event
    FROM new JOIN v ON v.id = new.id
    ORDER BY v.n
    -- Evaluated for each inserted row (a data-modifying CTE always runs to the
    -- end), so a conflict on logical_key wakes nobody; delivered at the commit
    -- (the same lane's notices fold into one).
    RETURNING CASE WHEN %(notify)s THEN pg_notify('spine_executions', payload ->> 'lane') END
)
-- The rest of each row is what was sent and the columns' defaults (see `insert_many`).
SELECT id, created_at, available_at, NULL::jsonb AS held FROM new
UNION ALL
-- A row not inserted: the active execution that holds its key, if this statement's
-- snapshot sees it (one that committed while this waited is read by `active_by_keys`).
SELECT v.id, NULL, NULL, to_jsonb(h)
FROM v JOIN executions h ON h.logical_key = v.logical_key
                        AND h.status IN ('pending', 'queued', 'running')
WHERE NOT EXISTS (SELECT FROM new WHERE new.id = v.id)

-- name: active_by_keys
SELECT id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id,
       cancel_requested, created_at, queued_at, started_at, completed_at, error,
       max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
       backend, backend_run_id
FROM executions
WHERE logical_key = ANY(%s) AND status IN ('pending', 'queued', 'running')

-- name: lock_for_cancel
SELECT status, cancel_requested FROM executions WHERE id = %s FOR UPDATE

-- name: cancel_pending
-- A pending execution ends cancelled at once: both events, in order.
WITH c AS (
    UPDATE executions
    SET status = 'cancelled', cancel_requested = true, completed_at = now()
    WHERE id = %(id)s RETURNING id
)
INSERT INTO execution_events (execution_id, event_type, payload)
SELECT id, e.type, e.payload FROM c, (VALUES
    (1, 'cancel_requested', '{}'::jsonb),
    (2, 'cancelled', '{"reason": "cancelled before it started"}'::jsonb)
) AS e (n, type, payload)
ORDER BY e.n

-- name: request_cancel
-- A held execution is asked to stop; its worker hears the notice.
WITH c AS (
    UPDATE executions SET cancel_requested = true WHERE id = %(id)s RETURNING id
), logged AS (
    INSERT INTO execution_events (execution_id, event_type)
    SELECT id, 'cancel_requested' FROM c
)
SELECT pg_notify('spine_cancel', id) FROM c
