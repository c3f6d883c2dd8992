-- Cheaper queue writes (measured in docs/benchmarks.md, "Drain").
--
-- Every claim and finish updates an executions row and inserts events, and
-- each index on those tables is written again on every change. This keeps the
-- indexes the queries use and makes the claim's index small.

-- Claim order by a bigint: the pending index's entries were keyed on the
-- 36-character text id; a claim walks past the dead entries of executions
-- claimed before it until VACUUM, so narrow entries mean fewer pages per claim.
-- Existing rows are numbered in the order they were claimed in before.
ALTER TABLE executions ADD COLUMN seq BIGINT;
UPDATE executions e SET seq = o.n
FROM (SELECT id, row_number() OVER (ORDER BY created_at, id) AS n FROM executions) o
WHERE e.id = o.id;
ALTER TABLE executions ALTER COLUMN seq SET NOT NULL;
ALTER TABLE executions ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY;
SELECT setval(pg_get_serial_sequence('executions', 'seq'), COALESCE(max(seq), 0) + 1, false)
FROM executions;

DROP INDEX idx_executions_pending;
-- The claim: WHERE status = 'pending' ORDER BY priority, seq.
CREATE INDEX idx_executions_pending ON executions (priority, seq) WHERE status = 'pending';

-- No query looks executions up by status alone (the claim, recovery and
-- listing each have their own index), yet every status change wrote to it.
DROP INDEX idx_executions_status;

-- Events rarely carry an idempotency key: index only those that do.
ALTER TABLE execution_events DROP CONSTRAINT execution_events_idempotency_key_key;
CREATE UNIQUE INDEX idx_events_idempotency_key ON execution_events (idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- The workers table holds a few rows per process start; an index on the
-- heartbeat column made every heartbeat a non-HOT update for no benefit.
DROP INDEX idx_workers_live;
