-- Issue 32: the executions list's filters over the history (app.engine.history,
-- list_page; docs/benchmarks.md, "Issue 32: reads with a million executions
-- behind").
--
-- A filtered page reads newest first and stops at its page size. Over the
-- primary key alone, a filter that matches little (the failed executions, one
-- pipeline among many) walks a segment after another until it has a page: in
-- the worst case the whole history. These indexes give each filter its own
-- order, so a page reads its own rows only, whatever the history holds.
--
-- Only the history's: its rows are written once (by the move, in batches), so
-- an index costs the move, not the queue. The hot table keeps none by status
-- (migration 004: every status change would write it).
--
-- Created on the partitioned tables, each segment gets its own: those that exist
-- now (here, in the migration's transaction, which holds off the pools' moves
-- and the history's reads while they build: 1.5 s for a million executions on
-- the benchmark machine) and every one created later, when it is attached
-- (app.engine.segments).

-- ?status=failed (or cancelled). Partial: a completed execution is most of the
-- history, and a filter on it finds a page in the primary key's first rows.
CREATE INDEX idx_executions_history_status ON executions_history (status, created_at, id)
    WHERE status <> 'completed';

-- ?pipeline=...
CREATE INDEX idx_executions_history_pipeline ON executions_history (pipeline, created_at, id);
