-- Issue 30: the Celery backend's outbox. PostgreSQL stays the one truth; a Celery
-- message only says "execution <id> may be claimable now".
--
-- published_at: when a task for the execution was last handed to the broker
-- (backend_run_id is that task's id). NULL means "not published since it last
-- became pending": the relay (worker/celery_relay.py) publishes those when due.
ALTER TABLE executions ADD COLUMN published_at timestamptz;

-- Every way back to pending (a retry waiting its backoff, a requeue, a give-back,
-- a lost worker's recovery, a manual retry) clears the mark, so the relay
-- publishes the execution again once it is due. One rule in one place rather
-- than in each of those statements; the WHEN clause keeps the function off every
-- other update (the local pool's claims and ends).
CREATE FUNCTION executions_unpublish() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.published_at := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER executions_unpublish
    BEFORE UPDATE OF status ON executions
    FOR EACH ROW
    WHEN (NEW.status = 'pending' AND OLD.status <> 'pending' AND NEW.backend <> 'local')
    EXECUTE FUNCTION executions_unpublish();

-- The relay's scan: pending executions of a backend other than the pool's.
CREATE INDEX idx_executions_outbox ON executions (backend, available_at)
    WHERE status = 'pending' AND backend <> 'local';
