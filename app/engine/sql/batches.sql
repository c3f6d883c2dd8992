-- Batched leases (app.engine.batches): a worker's ends, starts and claims in one statement.

-- name: record
-- The ends (and starts) of held executions, then the next batch.
--
-- A start sets `running` and counts the attempt; its time never precedes the
-- claim, and an end's never precedes the start. A failure sent with a retry
-- cap while attempts are left goes back to pending instead, until now() +
-- base * 2^(attempt-1), plus up to 10 per cent jitter, capped: the wait is computed
-- here, on the database clock, from the row's own policy; the jitter only
-- adds, so a retry never starts before the nominal wait. A `deferred` end (the
-- pipeline asked to run again at its record's retry_at: a publisher's Retry-After,
-- a file not yet published) goes back to pending until that time (never before
-- now), its attempt not counted and its last error kept: not a failure. Either ends
-- `cancelled` instead when a cancel was asked while the attempt ran. Events go
-- in per execution: started, then the end (or `retry_scheduled`, or `deferred`
-- with its reason and time), each stamped with when it happened.
--
-- The claim: up to %(limit)s pending executions in claim order (normal lane
-- first, then the order they became claimable), held `queued` by the worker
-- with a `queued` event each. The only statement that selects pending
-- executions FOR UPDATE SKIP LOCKED. Only %(backend)s's executions: a pool never
-- takes a Celery execution, nor a Celery task a pool's. %(only)s, when given, is
-- the one execution a Celery task claims by id (its message carries only the id):
-- the same guards (pending, due, this backend), so a redelivered or duplicate task
-- claims nothing.
WITH v AS (
    SELECT * FROM ROWS FROM (jsonb_to_recordset(%(records)s::jsonb) AS (
        id text, status text, started_ago float8, ended_ago float8, error text, payload jsonb,
        retry_cap float8, retry_at timestamptz
    )) WITH ORDINALITY AS v (id, status, started_ago, ended_ago, error, payload, retry_cap,
                             retry_at, n)
), locked AS MATERIALIZED (
    -- A start is written once: only over `queued` (a record sent again after its
    -- answer was lost finds the execution running, and starts nothing). The
    -- record's fields ride along (`asked`: its status), so the records are
    -- joined once, here, not once per step below.
    SELECT e.id, v.started_ago IS NOT NULL AND e.status = 'queued' AS starts,
           e.queued_at, e.started_at, e.attempt, e.max_attempts, e.cancel_requested,
           v.status AS asked, v.started_ago, v.ended_ago, v.error, v.payload, v.retry_cap,
           v.retry_at, v.n
    FROM executions e JOIN v ON v.id = e.id
    WHERE e.worker_id = %(worker)s AND e.status IN ('queued', 'running')
    FOR UPDATE OF e
), again AS (
    -- `would_retry`: a failure with attempts left. A cancel asked while the attempt ran
    -- (before its check saw it) stops whatever would run again: a retry or a deferral
    -- ends `cancelled` here instead of going back to pending.
    SELECT locked.*,
           locked.asked = 'failed' AND locked.retry_cap IS NOT NULL
               AND locked.attempt + locked.starts::int < locked.max_attempts AS would_retry
    FROM locked
), held AS (
    SELECT again.*, again.attempt + again.starts::int AS attempt_now,
           again.would_retry AND NOT again.cancel_requested AS retries,
           again.asked = 'deferred' AND NOT again.cancel_requested AS defers,
           again.cancel_requested AND (again.would_retry OR again.asked = 'deferred') AS stops,
           CASE WHEN again.starts
                THEN greatest(again.queued_at, now() - make_interval(secs => again.started_ago))
                ELSE again.started_at END AS started_now
    FROM again
), timed AS (
    SELECT held.*,
           greatest(held.queued_at, held.started_now,
                    now() - make_interval(secs => held.ended_ago)) AS ended_at
    FROM held
), f AS (
    UPDATE executions e
    SET status = CASE WHEN t.retries OR t.defers THEN 'pending'
                      WHEN t.stops THEN 'cancelled' ELSE t.asked END,
        error = CASE WHEN t.asked IN ('running', 'deferred') THEN e.error ELSE t.error END,
        attempt = t.attempt_now - (t.asked = 'deferred')::int,
        worker_id = CASE WHEN t.retries OR t.defers THEN NULL ELSE e.worker_id END,
        queued_at = CASE WHEN t.retries OR t.defers THEN NULL ELSE e.queued_at END,
        started_at = CASE WHEN t.retries OR t.defers THEN NULL ELSE t.started_now END,
        completed_at = CASE WHEN t.retries OR t.defers OR t.asked = 'running'
                            THEN NULL ELSE t.ended_at END,
        available_at = CASE WHEN t.defers THEN greatest(now(), t.retry_at)
                            WHEN NOT t.retries THEN e.available_at
                            ELSE now() + make_interval(secs => least(t.retry_cap,
                                e.retry_backoff_seconds * 2 ^ (t.attempt_now - 1)
                                * (1 + random() / 10))) END
    FROM timed AS t
    -- Held by this worker: `locked` checked it, and its lock keeps it so. Said again
    -- all the same: it lets the planner reach the rows through idx_executions_held
    -- (what this worker holds: a batch or two) whatever the table's statistics say.
    -- Without it, on a table analyzed while empty, the plan was a nested loop over a
    -- scan of the whole table for each record: 0.1-0.5 s a batch with 20,000 rows.
    WHERE e.id = t.id AND e.worker_id = %(worker)s AND e.status IN ('queued', 'running')
    RETURNING e.id, e.status, t.attempt_now AS attempt, e.available_at,
              t.started_now AS started_at, t.ended_at, t.payload, t.n,
              t.starts AS started_here, t.retries, t.defers
), logged AS (
    INSERT INTO execution_events (execution_id, event_type, timestamp, payload)
    SELECT f.id, step.event_type,
           CASE WHEN step.k = 1 THEN f.started_at ELSE f.ended_at END,
           CASE WHEN step.k = 1
                THEN jsonb_build_object('worker_id', %(worker)s::text, 'attempt', f.attempt)
                WHEN f.retries OR f.defers
                THEN f.payload || jsonb_build_object('attempt', f.attempt,
                                                     'retry_at', f.available_at)
                ELSE f.payload END
    FROM f CROSS JOIN LATERAL (VALUES
        (1, 'started'),
        (2, CASE WHEN f.retries THEN 'retry_scheduled' WHEN f.defers THEN 'deferred'
                 ELSE f.status END)
    ) AS step (k, event_type)
    WHERE (step.k = 1 AND f.started_here) OR (step.k = 2 AND f.status <> 'running')
    ORDER BY f.n, step.k
), next_queued AS MATERIALIZED (
    -- Two branches, not `(only IS NULL OR id = only)`: a prepared statement's
    -- generic plan cannot tell the two apart and walked the pending index to find
    -- one id (91 ms against 0.13 ms among 100,000 pending rows). Here the
    -- parameter is a one-time filter: the branch not taken never runs.
    -- The scan in claim order is migration 170's function: its own settings keep
    -- it on the pending index whatever the table's statistics say.
    SELECT id FROM claimable_executions(%(backend)s, %(limit)s) AS c (id)
    WHERE %(only)s::text IS NULL
), next_by_id AS MATERIALIZED (
    SELECT id FROM executions
    WHERE id = %(only)s::text
      AND status = 'pending' AND available_at <= now() AND backend = %(backend)s
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE executions e
    SET status = 'queued', worker_id = %(worker)s, queued_at = now()
    FROM (SELECT id FROM next_queued UNION ALL SELECT id FROM next_by_id) AS next
    WHERE e.id = next.id
    RETURNING e.id, e.pipeline, e.params, e.lane, e.status, e.trigger_source, e.logical_key,
              e.attempt, e.worker_id, e.cancel_requested, e.created_at, e.queued_at,
              e.started_at, e.completed_at, e.error, e.max_attempts, e.retry_backoff_seconds,
              e.available_at, e.timeout_seconds, e.backend, e.backend_run_id,
              e.priority AS claim_priority, e.seq AS claim_seq
), claim_logged AS (
    INSERT INTO execution_events (execution_id, event_type, payload)
    SELECT id, 'queued', jsonb_build_object('worker_id', worker_id, 'attempt', attempt + 1)
    FROM claimed ORDER BY claim_priority, available_at, claim_seq
)
SELECT (SELECT COALESCE(array_agg(id), '{}') FROM f) AS recorded, claimed.*
FROM (SELECT) AS one LEFT JOIN claimed ON true
ORDER BY claimed.claim_priority, claimed.available_at, claimed.claim_seq
