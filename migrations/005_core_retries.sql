-- Retries with backoff, delayed runs and timeouts (issue 14; docs/operations.md, "Retries").
--
-- Each execution carries its own retry policy, resolved at submit from the
-- pipeline's RetryPolicy and the submission's overrides, so the finish of an
-- attempt, lease recovery and manual retry read it from the row alone.
ALTER TABLE executions
    -- Attempts before a retryable failure (or a lost worker) is final.
    ADD COLUMN max_attempts INTEGER NOT NULL DEFAULT 3 CHECK (max_attempts BETWEEN 1 AND 100),
    -- The first retry waits this long; each later one twice the one before (capped).
    ADD COLUMN retry_backoff_seconds DOUBLE PRECISION NOT NULL DEFAULT 10
        CHECK (retry_backoff_seconds >= 0),
    -- Not claimed before this: a delayed run (run_at) or a retry's backoff.
    ADD COLUMN available_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- An attempt running longer is asked to stop, then abandoned (NULL: no limit).
    ADD COLUMN timeout_seconds DOUBLE PRECISION CHECK (timeout_seconds > 0);

-- The claim: WHERE status = 'pending' AND available_at <= now()
--            ORDER BY priority, available_at, seq.
-- available_at is a key column, between the lane and the arrival order: within
-- a lane the claimable rows come first in the index, so the claim stops at
-- the first entry whenever the lane has work, and the rows still waiting (a
-- retry's backoff, a delayed run) are index entries it only compares, never
-- heap rows it visits. A fresh submission's available_at is its insert's
-- now(), so for work submitted as it comes this is the seq order of before;
-- a retry takes its turn by the time it became claimable again.
DROP INDEX idx_executions_pending;
CREATE INDEX idx_executions_pending ON executions (priority, available_at, seq)
    WHERE status = 'pending';

ALTER TABLE execution_events DROP CONSTRAINT execution_events_event_type_check;
ALTER TABLE execution_events ADD CONSTRAINT execution_events_event_type_check
    CHECK (event_type IN (
        'created', 'queued', 'started', 'progress', 'completed', 'failed',
        'cancel_requested', 'cancelled', 'requeued', 'retry_scheduled', 'retried'));
