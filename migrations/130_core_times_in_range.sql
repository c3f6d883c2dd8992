-- Issue 31: the database refuses an execution time its clients cannot read.
--
-- PostgreSQL stores times past year 9999; Python's datetime (psycopg's) does
-- not. A submit's one autocommit statement used to store such a row and only
-- then fail, while its client read the RETURNING row: the row stayed, and
-- every later read of it failed. With this check the statement itself fails,
-- so nothing is written. The bound is app.time_bounds.LATEST; inputs are
-- refused before they get here, this is the guarantee behind them.

-- A row stored that way is pending (it could never be claimed nor cancelled):
-- it becomes readable again, due at the bound, and can then be cancelled.
-- Only the pending rows are looked at, through their index.
UPDATE executions SET available_at = TIMESTAMPTZ '9999-12-30 00:00:00+00'
WHERE status = 'pending' AND available_at > TIMESTAMPTZ '9999-12-30 00:00:00+00';

-- NOT VALID: the table is not scanned (the rows above were the only way past
-- the bound); new and updated rows are checked.
ALTER TABLE executions
    ADD CONSTRAINT executions_available_at_readable
    CHECK (available_at <= TIMESTAMPTZ '9999-12-30 00:00:00+00') NOT VALID;
