-- History (app.engine.history, app.engine.archive): the reads of one logical history
-- over the hot table and the history tables, and the move between them.

-- name: get_hot
-- By id, in the hot table alone (the queue's executions and the last hour's).
SELECT id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id,
       cancel_requested, created_at, queued_at, started_at, completed_at, error,
       max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
       backend, backend_run_id
FROM executions WHERE id = %(id)s

-- name: get
-- By id, in both tiers: every segment of the history is probed.
SELECT id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id,
       cancel_requested, created_at, queued_at, started_at, completed_at, error,
       max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
       backend, backend_run_id
FROM executions_all WHERE id = %(id)s

-- name: get_near
-- By id, created from `since` to `until` (the days around the time a version 7 id
-- carries, app.engine.ids): sent unprepared, the bounds prune the history's segments.
SELECT id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id,
       cancel_requested, created_at, queued_at, started_at, completed_at, error,
       max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
       backend, backend_run_id
FROM executions_all
WHERE id = %(id)s AND created_at >= %(since)s AND created_at < %(until)s

-- name: list_page
-- Newest first; (at, id) is the keyset cursor of the previous page. Each tier is read
-- in (created_at DESC, id DESC) order and the two are merged; `since` and `until`
-- prune the history's segments.
SELECT id, pipeline, params, lane, status, trigger_source, logical_key, attempt, worker_id,
       cancel_requested, created_at, queued_at, started_at, completed_at, error,
       max_attempts, retry_backoff_seconds, available_at, timeout_seconds,
       backend, backend_run_id
FROM executions_all
WHERE (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(pipeline)s::text IS NULL OR pipeline = %(pipeline)s)
  AND (%(lane)s::text IS NULL OR lane = %(lane)s)
  AND (%(since)s::timestamptz IS NULL OR created_at >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR created_at < %(until)s)
  AND (%(attempt_gte)s::int IS NULL OR attempt >= %(attempt_gte)s)
  AND (%(at)s::timestamptz IS NULL OR (created_at, id) < (%(at)s, %(id)s))
ORDER BY created_at DESC, id DESC
LIMIT %(limit)s

-- name: list_events
-- An execution's events, wherever it is: they are always in its own tier, and in the
-- history in the segment of its created_at (`created_at`, the execution's, found by
-- `get` first: as a value, it prunes the history to that one segment).
SELECT id, execution_id, event_type, timestamp, payload FROM execution_events
WHERE execution_id = %(id)s AND id > %(after)s
UNION ALL
SELECT id, execution_id, event_type, timestamp, payload FROM execution_events_history
WHERE execution_id = %(id)s AND id > %(after)s
  AND execution_created_at = %(created_at)s
ORDER BY id

-- name: move
-- Up to %(batch)s executions that finished before %(after)s seconds ago, oldest
-- created first, with their events, from the hot tables to the history tables:
-- one statement, so each row is in exactly one tier at every instant. Rows the
-- pools hold are skipped (SKIP LOCKED). One created before %(horizon)s (retention)
-- is deleted, not moved: its segment is gone or about to go. `covered_until` is
-- the end of the newest segment: nothing past it is taken (there is nowhere to put
-- it yet). The hot candidates are found through idx_executions_created (no index
-- of their own: the finishing update would pay for it on the hot path).
WITH chosen AS (
    SELECT id FROM executions
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND completed_at < now() - make_interval(secs => %(after)s)
      AND created_at < %(covered_until)s
    ORDER BY created_at, id
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), moved AS (
    DELETE FROM executions e USING chosen WHERE e.id = chosen.id
    RETURNING e.*
), events AS (
    DELETE FROM execution_events v USING moved WHERE v.execution_id = moved.id
    RETURNING v.id, v.execution_id, v.event_type, v.timestamp, v.payload, v.idempotency_key,
              moved.created_at AS execution_created_at
), kept_events AS (
    INSERT INTO execution_events_history (execution_created_at, id, execution_id, event_type,
                                          timestamp, payload, idempotency_key)
    SELECT execution_created_at, id, execution_id, event_type, timestamp, payload,
           idempotency_key
    FROM events WHERE execution_created_at >= %(horizon)s
), kept AS (
    INSERT INTO executions_history (id, pipeline, params, lane, trigger_source, logical_key,
                                    status, backend, backend_run_id, attempt, worker_id,
                                    cancel_requested, created_at, queued_at, started_at,
                                    completed_at, error, max_attempts, retry_backoff_seconds,
                                    available_at, timeout_seconds, overrides)
    SELECT id, pipeline, params, lane, trigger_source, logical_key, status, backend,
           backend_run_id, attempt, worker_id, cancel_requested, created_at, queued_at,
           started_at, completed_at, error, max_attempts, retry_backoff_seconds,
           available_at, timeout_seconds, overrides
    FROM moved WHERE created_at >= %(horizon)s
    RETURNING id
)
SELECT (SELECT count(*) FROM moved) AS taken, (SELECT count(*) FROM kept) AS kept

-- name: oldest_hot
-- Where the segments must start: the oldest execution still in the hot table (any
-- status: an active one is moved once it finishes, into its created_at's segment).
SELECT min(created_at) AS at FROM executions

-- name: prune_hot
-- `spine executions prune`: finished executions older than the cut-off, with their
-- events, deleted from the hot table in batches (what the pools have not moved yet).
WITH doomed AS (
    SELECT id FROM executions
    WHERE status IN ('completed', 'failed', 'cancelled')
      AND completed_at < %(cutoff)s
      -- Implied by the line above (nothing completes before it is created);
      -- it lets the scan use idx_executions_created.
      AND created_at < %(cutoff)s
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM execution_events v USING doomed WHERE v.execution_id = doomed.id
)
DELETE FROM executions e USING doomed WHERE e.id = doomed.id

-- name: prune_history
-- The same in the one history segment the cut-off falls inside (the segments wholly
-- before it are dropped, not deleted from): only its own rows are read.
WITH doomed AS (
    SELECT created_at, id FROM executions_history
    WHERE created_at >= %(segment_start)s AND created_at < %(cutoff)s
      AND completed_at < %(cutoff)s
    LIMIT %(batch)s
    FOR UPDATE SKIP LOCKED
), events AS (
    DELETE FROM execution_events_history v USING doomed
    WHERE v.execution_created_at = doomed.created_at AND v.execution_id = doomed.id
)
DELETE FROM executions_history e USING doomed
WHERE e.created_at = doomed.created_at AND e.id = doomed.id

-- name: clock
-- The database's clock, so many seconds back (a pass's today, a prune's cut-off).
SELECT now() - make_interval(secs => %s) AS at

-- name: try_lock
-- One history pass at a time: a session lock (held across the pass's transactions,
-- since a concurrent detach cannot run inside one); a pass that finds it held skips.
SELECT pg_try_advisory_lock(%s) AS ok

-- name: lock
-- A prune waits for a running pass instead.
SELECT pg_advisory_lock(%s)

-- name: unlock
-- The lock back, and the session's lock_timeout (the segment DDL's) with it.
SELECT pg_advisory_unlock(%s),
       set_config('lock_timeout', (SELECT reset_val FROM pg_settings WHERE name = 'lock_timeout'),
                  false)
