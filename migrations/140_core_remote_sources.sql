-- Issue 27: remote sources. An attempt may end asking to run again at a time
-- (app.errors.TryAgainAt: a publisher's Retry-After, a file not yet published):
-- the execution goes back to pending until then, with a `deferred` event that
-- carries the reason and the time. It is not a failure and uses no attempt.
ALTER TABLE execution_events DROP CONSTRAINT execution_events_event_type_check;
ALTER TABLE execution_events ADD CONSTRAINT execution_events_event_type_check
    CHECK (event_type IN (
        'created', 'queued', 'started', 'progress', 'completed', 'failed',
        'cancel_requested', 'cancelled', 'requeued', 'retry_scheduled', 'retried',
        'deferred'));
