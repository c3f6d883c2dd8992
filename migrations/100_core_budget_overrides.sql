-- Issue 25: a manual retry resolves its fresh budget as a submit does.
--
-- The row's max_attempts, retry_backoff_seconds and timeout_seconds are the
-- budget resolved when it was created: the pipeline's RetryPolicy, then
-- SPINE_MAX_ATTEMPTS, then the submission's overrides
-- (app.engine.retry.budget). `overrides` keeps the last of these, only the
-- ones the submission set (e.g. {"max_attempts": 2}), so a manual retry can
-- resolve the budget again from the policy and the environment of its own
-- time without losing what the submitter asked for.
ALTER TABLE executions
    ADD COLUMN overrides JSONB NOT NULL DEFAULT '{}'
        CHECK (jsonb_typeof(overrides) = 'object');

-- The rows from before: nobody knows which of their numbers were asked for,
-- so all of them stand, and a manual retry leaves them as they are.
UPDATE executions
SET overrides = jsonb_strip_nulls(jsonb_build_object(
    'max_attempts', max_attempts,
    'retry_backoff_seconds', retry_backoff_seconds,
    'timeout_seconds', timeout_seconds));
