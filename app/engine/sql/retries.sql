-- Manual retry (app.engine.retries): failed or cancelled executions back to pending.
-- The executions a retry may take: ended unsuccessfully, their logical_key free
-- (the key names one active execution); every filter optional.

-- name: retry
-- Two ended executions with one logical_key: only the newest comes back. `attempt`
-- starts again from 0, with a fresh budget resolved as app.engine.retry.budget
-- resolves a submit's: %(budgets)s holds each pipeline's budget as its policy and
-- SPINE_MAX_ATTEMPTS say now, and the row's own overrides go over it (a pipeline
-- the registry no longer knows keeps the row's numbers under them).
WITH chosen AS (
    SELECT e.id, e.status, e.attempt, e.logical_key, e.created_at, e.pipeline, e.overrides,
           e.max_attempts, e.retry_backoff_seconds, e.timeout_seconds
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
), one_per_key AS (
    SELECT DISTINCT ON (COALESCE(logical_key, id)) id, status, attempt,
           COALESCE(%(budgets)s::jsonb -> pipeline, jsonb_build_object(
               'max_attempts', max_attempts, 'retry_backoff_seconds', retry_backoff_seconds,
               'timeout_seconds', timeout_seconds)) || overrides AS budget
    FROM chosen
    ORDER BY COALESCE(logical_key, id), created_at DESC
), r AS (
    UPDATE executions e
    SET status = 'pending', attempt = 0, worker_id = NULL, queued_at = NULL,
        started_at = NULL, completed_at = NULL, cancel_requested = false, available_at = now(),
        max_attempts = (o.budget ->> 'max_attempts')::int,
        retry_backoff_seconds = (o.budget ->> 'retry_backoff_seconds')::float8,
        timeout_seconds = (o.budget ->> 'timeout_seconds')::float8
    FROM one_per_key o
    WHERE e.id = o.id
    RETURNING e.id, e.pipeline, e.params, e.lane, e.status, e.trigger_source, e.logical_key,
              e.attempt, e.worker_id, e.cancel_requested, e.created_at, e.queued_at,
              e.started_at, e.completed_at, e.error, e.max_attempts, e.retry_backoff_seconds,
              e.available_at, e.timeout_seconds, e.backend, e.backend_run_id,
              o.status AS previous_status, o.attempt AS previous_attempts
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'retried', jsonb_build_object(
        'trigger_source', %(source)s::text, 'previous_status', previous_status,
        'previous_attempts', previous_attempts)
    FROM r
)
SELECT * FROM r

-- name: count_retryable
-- What `retry` with the same filters would take now: its choice, counted per key.
SELECT count(DISTINCT COALESCE(e.logical_key, e.id)) AS n FROM executions e
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
