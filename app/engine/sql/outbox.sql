-- The outbox of a brokered backend (app.engine.outbox): which pending executions
-- still need a message, and the record that one was sent. Nothing here changes an
-- execution's status: the claim (batches.record) alone does that.

-- name: unpublished
-- Pending, due executions of %(backend)s never published since they last became
-- pending (published_at NULL: a crash between the commit and the publish, a broker
-- outage, a retry whose backoff is over, a requeue), or published longer ago than
-- %(after)s seconds and still not started (a message lost with its node). A
-- new execution is left to its submitter for 2 seconds (its publish usually
-- follows the commit within milliseconds). Locked
-- until the caller's transaction ends, so two relays do not publish the same
-- execution at once; the claim waits for nothing (it skips locked rows).
SELECT id, lane, attempt FROM executions
WHERE status = 'pending' AND backend = %(backend)s AND backend <> 'local'
  AND available_at <= now()
  AND (published_at IS NULL AND (attempt > 0 OR created_at < now() - interval '2 seconds')
       OR published_at < now() - make_interval(secs => %(after)s))
ORDER BY available_at
LIMIT %(limit)s
FOR NO KEY UPDATE SKIP LOCKED

-- name: published
-- The tasks sent: each execution's run id is its latest task's id. The task may
-- have claimed it already (the run id is still written); the publication time
-- only while it is still pending at the attempt it was published for, so a retry
-- that came in between stays unpublished for the relay.
UPDATE executions e
SET backend_run_id = v.run_id,
    published_at = CASE WHEN e.status = 'pending' AND e.attempt = v.attempt THEN now()
                        ELSE e.published_at END
FROM json_to_recordset(%(sent)s::json) AS v (id text, run_id text, attempt int)
WHERE e.id = v.id

-- name: unpublish
-- Tasks the broker refused after the relay recorded them: unpublished again, so
-- the next pass sends them (only if nothing has changed them since).
UPDATE executions e
SET published_at = NULL
FROM json_to_recordset(%(sent)s::json) AS v (id text, run_id text, attempt int)
WHERE e.id = v.id AND e.backend_run_id = v.run_id AND e.status = 'pending'
