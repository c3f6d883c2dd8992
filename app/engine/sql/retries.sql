-- Manual retry (app.engine.retries): failed or cancelled executions back to pending.
-- The executions a retry may take: ended unsuccessfully, their logical_key free
-- (the key names one active execution); every filter optional. They may be in
-- either tier: one in the history tables moves back to the hot table, same id,
-- with its events, in the same statement.

-- name: retry
-- Two ended executions with one logical_key: only the newest comes back. `attempt`
-- starts again from 0, with a fresh budget resolved as app.engine.retry.budget
-- resolves a submit's: %(budgets)s holds each pipeline's budget as its policy and
-- SPINE_MAX_ATTEMPTS say now, and the row's own overrides go over it (a pipeline
-- the registry no longer knows keeps the row's numbers under them).
WITH hot AS (
    SELECT e.id, e.status, e.attempt, e.logical_key, e.created_at, e.pipeline, e.overrides,
           e.max_attempts, e.retry_backoff_seconds, e.timeout_seconds, false AS in_history
    FROM executions e
    WHERE e.status IN ('failed', 'cancelled')
      AND (%(id)s::text IS NULL OR e.id = %(id)s)
      AND (%(status)s::text IS NULL OR e.status = %(status)s)
      AND (%(pipeline)s::text IS NULL OR e.pipeline = %(pipeline)s)
      AND (%(since)s::timestamptz IS NULL OR e.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR e.created_at < %(until)s)
      AND (e.logical_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM executions a
          WHERE a.logical_key = e.logical_key AND a.status IN ('pending', 'queued', 'running')))
    FOR UPDATE OF e
), cold AS (
    SELECT h.id, h.status, h.attempt, h.logical_key, h.created_at, h.pipeline, h.overrides,
           h.max_attempts, h.retry_backoff_seconds, h.timeout_seconds, true AS in_history
    FROM executions_history h
    WHERE h.status IN ('failed', 'cancelled')
      AND (%(id)s::text IS NULL OR h.id = %(id)s)
      AND (%(status)s::text IS NULL OR h.status = %(status)s)
      AND (%(pipeline)s::text IS NULL OR h.pipeline = %(pipeline)s)
      AND (%(since)s::timestamptz IS NULL OR h.created_at >= %(since)s)
      AND (%(until)s::timestamptz IS NULL OR h.created_at < %(until)s)
      AND (h.logical_key IS NULL OR NOT EXISTS (
          SELECT 1 FROM executions a
          WHERE a.logical_key = h.logical_key AND a.status IN ('pending', 'queued', 'running')))
    FOR UPDATE OF h
), one_per_key AS (
    SELECT DISTINCT ON (COALESCE(logical_key, id)) id, status, attempt, created_at, in_history,
           COALESCE(%(budgets)s::jsonb -> pipeline, jsonb_build_object(
               'max_attempts', max_attempts, 'retry_backoff_seconds', retry_backoff_seconds,
               'timeout_seconds', timeout_seconds)) || overrides AS budget
    FROM (SELECT * FROM hot UNION ALL SELECT * FROM cold) chosen
    ORDER BY COALESCE(logical_key, id), created_at DESC
), r AS (
    UPDATE executions e
    SET status = 'pending', attempt = 0, worker_id = NULL, queued_at = NULL,
        started_at = NULL, completed_at = NULL, cancel_requested = false, available_at = now(),
        max_attempts = (o.budget ->> 'max_attempts')::int,
        retry_backoff_seconds = (o.budget ->> 'retry_backoff_seconds')::float8,
        timeout_seconds = (o.budget ->> 'timeout_seconds')::float8
    FROM one_per_key o
    WHERE e.id = o.id AND NOT o.in_history
    RETURNING e.id, e.pipeline, e.params, e.lane, e.status, e.trigger_source, e.logical_key,
              e.attempt, e.worker_id, e.cancel_requested, e.created_at, e.queued_at,
              e.started_at, e.completed_at, e.error, e.max_attempts, e.retry_backoff_seconds,
              e.available_at, e.timeout_seconds, e.backend, e.backend_run_id,
              o.status AS previous_status, o.attempt AS previous_attempts
), back AS (
    -- From the history: the row leaves its segment (its key: created_at, id)...
    DELETE FROM executions_history h USING one_per_key o
    WHERE h.created_at = o.created_at AND h.id = o.id AND o.in_history
    RETURNING h.*, o.budget, o.status AS previous_status, o.attempt AS previous_attempts
), back_events AS (
    -- ...with its events (the events' tier is always their execution's)...
    DELETE FROM execution_events_history v USING back
    WHERE v.execution_created_at = back.created_at AND v.execution_id = back.id
    RETURNING v.id, v.execution_id, v.event_type, v.timestamp, v.payload, v.idempotency_key
), events_restored AS (
    INSERT INTO execution_events (id, execution_id, event_type, timestamp, payload,
                                  idempotency_key)
    OVERRIDING SYSTEM VALUE
    SELECT id, execution_id, event_type, timestamp, payload, idempotency_key
    FROM back_events
), restored AS (
    -- ...and is inserted pending, as the UPDATE above leaves a hot one. It takes a
    -- new turn in the claim order (a new seq), as any execution coming due does.
    INSERT INTO executions (id, pipeline, params, lane, trigger_source, logical_key, status,
                            backend, backend_run_id, attempt, worker_id, cancel_requested,
                            created_at, queued_at, started_at, completed_at, error,
                            max_attempts, retry_backoff_seconds, available_at,
                            timeout_seconds, overrides)
    SELECT id, pipeline, params, lane, trigger_source, logical_key, 'pending', backend,
           backend_run_id, 0, NULL, false, created_at, NULL, NULL, NULL, error,
           (budget ->> 'max_attempts')::int, (budget ->> 'retry_backoff_seconds')::float8,
           now(), (budget ->> 'timeout_seconds')::float8, overrides
    FROM back
    RETURNING id, pipeline, params, lane, status, trigger_source, logical_key, attempt,
              worker_id, cancel_requested, created_at, queued_at, started_at, completed_at,
              error, max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
              backend, backend_run_id
), done AS (
    SELECT * FROM r
    UNION ALL
    SELECT s.*, b.previous_status, b.previous_attempts
    FROM restored s JOIN back b ON b.id = s.id
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'retried', jsonb_build_object(
        'trigger_source', %(source)s::text, 'previous_status', previous_status,
        'previous_attempts', previous_attempts)
    FROM done
)
SELECT * FROM done

-- name: count_retryable
-- What `retry` with the same filters would take now: its choice, counted per key.
SELECT count(DISTINCT COALESCE(e.logical_key, e.id)) AS n FROM executions_all e
WHERE e.status IN ('failed', 'cancelled')
  AND (%(status)s::text IS NULL OR e.status = %(status)s)
  AND (%(pipeline)s::text IS NULL OR e.pipeline = %(pipeline)s)
  AND (%(since)s::timestamptz IS NULL OR e.created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR e.created_at < %(until)s)
  AND (e.logical_key IS NULL OR NOT EXISTS (
      SELECT 1 FROM executions a
      WHERE a.logical_key = e.logical_key AND a.status IN ('pending', 'queued', 'running')))

-- name: notify_retried
SELECT pg_notify('spine_executions', 'retried')
