-- Issue 32: `GET /api/v1/executions?status=failed` (and `cancelled`) finds its page
-- in the hot table by an index, not by walking every recent execution.
--
-- The hot table keeps no status index (migration 004: every status change would
-- write it), so a list filtered by a rare status walked idx_executions_created
-- through every execution of the last hour, mostly completed ones: 37 ms with the
-- 20,000 of one drain, and more the busier the hour. The history has its own
-- (migration 160). This one is partial: only a row that ends failed or cancelled
-- writes an entry, so the claim, the start and a completed end never touch it.
CREATE INDEX idx_executions_unsuccessful ON executions (status, created_at DESC, id DESC)
    WHERE status IN ('failed', 'cancelled');
