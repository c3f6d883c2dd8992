-- Every state change of an execution is a row here, written in the same
-- transaction as the change. An identity id gives a total order per execution.
CREATE TABLE execution_events (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id    TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    event_type      TEXT NOT NULL CHECK (event_type IN (
                        'created', 'queued', 'started', 'progress', 'completed', 'failed',
                        'cancel_requested', 'cancelled', 'requeued')),
    timestamp       TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    payload         JSONB NOT NULL DEFAULT '{}'::jsonb,
    idempotency_key TEXT UNIQUE
);

CREATE INDEX idx_events_execution ON execution_events (execution_id, id);

ALTER TABLE execution_events SET (autovacuum_vacuum_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
