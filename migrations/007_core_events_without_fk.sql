-- Execution events without a foreign key (issue 19; docs/benchmarks.md).
--
-- Every event is inserted by a statement that takes its execution_id from the
-- executions row that statement just wrote or read (a data-modifying CTE's
-- RETURNING), so the key could never fail; yet it cost each event insert a
-- trigger and a KEY SHARE lock on its execution, three times per execution
-- that runs. Pruning deletes the events with their executions
-- (app.engine.executions.prune_finished), which the cascade did before.
ALTER TABLE execution_events DROP CONSTRAINT execution_events_execution_id_fkey;
