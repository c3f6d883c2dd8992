-- Executions: one row per submitted run of a registered pipeline.
-- pending -> queued (claimed by a worker) -> running -> completed | failed | cancelled
CREATE TABLE executions (
    id             TEXT PRIMARY KEY DEFAULT gen_random_uuid()::text,
    pipeline       TEXT NOT NULL,
    params         JSONB NOT NULL DEFAULT '{}'::jsonb,
    lane           TEXT NOT NULL DEFAULT 'normal' CHECK (lane IN ('normal', 'backfill')),
    -- Claim order: normal lane first, then oldest. Derived, so it can never disagree with lane.
    priority       SMALLINT GENERATED ALWAYS AS (CASE WHEN lane = 'normal' THEN 0 ELSE 1 END) STORED,
    trigger_source TEXT NOT NULL,
    logical_key    TEXT,
    status         TEXT NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'queued', 'running', 'completed', 'failed', 'cancelled')),
    backend        TEXT NOT NULL DEFAULT 'local',
    backend_run_id TEXT,
    attempt        INTEGER NOT NULL DEFAULT 0,  -- times claimed; the claim increments it
    worker_id      TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT false,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    queued_at      TIMESTAMPTZ,
    started_at     TIMESTAMPTZ,
    completed_at   TIMESTAMPTZ,
    error          TEXT,
    -- A claimed execution always names its worker; finished ones keep it for history.
    CHECK (status NOT IN ('queued', 'running') OR worker_id IS NOT NULL)
);

CREATE INDEX idx_executions_status ON executions (status);
-- The claim: WHERE status = 'pending' ORDER BY priority, created_at, id.
CREATE INDEX idx_executions_pending ON executions (priority, created_at, id) WHERE status = 'pending';
-- A logical key names at most one active execution; concurrent submits cannot race past it.
CREATE UNIQUE INDEX idx_executions_active_logical_key ON executions (logical_key)
    WHERE logical_key IS NOT NULL AND status IN ('pending', 'queued', 'running');
-- Listing newest first (keyset pagination), and recovery's scan of held executions.
CREATE INDEX idx_executions_created ON executions (created_at DESC, id DESC);
CREATE INDEX idx_executions_held ON executions (worker_id) WHERE status IN ('queued', 'running');

-- Queue tables churn: vacuum them sooner than the default 20% of rows.
ALTER TABLE executions SET (autovacuum_vacuum_scale_factor = 0.02, autovacuum_analyze_scale_factor = 0.02);
