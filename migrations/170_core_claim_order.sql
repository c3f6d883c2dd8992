-- Issue 32: the claim walks the pending index in claim order, whatever the
-- statistics say (docs/benchmarks.md, "Issue 32: the claim's plan on a queue
-- analyzed empty").
--
-- A queue that was empty (or had nothing pending) when it was last analyzed
-- makes the planner expect one pending row. It then prefers a bitmap scan of
-- idx_executions_pending and a sort: every pending row read and sorted, for
-- each batch of 64, until the next auto-analyze. With 20,000 pending that is
-- 11 ms a claim against 0.08 ms by the index in order; a prepared statement's
-- generic plan keeps the bad choice for the connection's life.
--
-- The claim's scan lives here, in a function whose own settings rule out the
-- bitmap scan and the sort while it runs (restored when it returns): the only
-- plan left is the index's order, which stops at the batch's last row. Only
-- this scan is affected; the batch statement around it (app/engine/sql/
-- batches.sql, "record") and the pipelines sharing the worker's connections plan
-- as always. PL/pgSQL caches the plan per session.
CREATE FUNCTION claimable_executions(claim_backend TEXT, claim_limit INTEGER)
RETURNS SETOF TEXT
LANGUAGE plpgsql VOLATILE
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
BEGIN
    RETURN QUERY
    SELECT e.id FROM executions e
    WHERE e.status = 'pending' AND e.available_at <= now() AND e.backend = claim_backend
    ORDER BY e.priority, e.available_at, e.seq
    LIMIT claim_limit
    FOR UPDATE OF e SKIP LOCKED;
END
$$;
