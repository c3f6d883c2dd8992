-- Raw lines partitioned by load, so that old loads' lines can be dropped cheaply.
--
-- otc_trades_raw becomes a table partitioned by LIST (load_id) with one
-- partition per load, named otc_trades_raw_<load id>. A load creates its
-- partition as a plain table in its own transaction, COPYs into it and attaches
-- it (app/otc/loads.py); `spine data prune-raw` drops the partitions of old
-- loads: the space comes back at once, with no DELETE and no bloat to vacuum.
-- The load's row (and its summary) and its rejects stay; otc_loads.raw_pruned_at
-- says when its lines went.
--
-- Existing rows move here, one partition per load, in line order.

ALTER TABLE otc_loads ADD COLUMN raw_pruned_at TIMESTAMPTZ;

DROP VIEW otc_trades_raw_lines;
ALTER TABLE otc_trades_raw RENAME TO otc_trades_raw_before_013;

-- The defaults are the ones of migration 010; a load's partition copies them.
CREATE TABLE otc_trades_raw (
    load_id  BIGINT NOT NULL DEFAULT current_setting('spine.otc_load_id')::bigint,
    line_no  BIGINT NOT NULL DEFAULT nextval('pg_temp.otc_line_seq'::text::regclass),
    line     TEXT
) PARTITION BY LIST (load_id);

DO $$
DECLARE
    loaded bigint;
    part text;
BEGIN
    FOR loaded IN SELECT DISTINCT load_id FROM otc_trades_raw_before_013 ORDER BY 1 LOOP
        part := 'otc_trades_raw_' || loaded;
        -- The CHECK lets ATTACH skip scanning the rows to prove they belong.
        EXECUTE format(
            'CREATE TABLE %I (LIKE otc_trades_raw INCLUDING DEFAULTS, CHECK (load_id = %s))',
            part, loaded);
        EXECUTE format(
            'INSERT INTO %I SELECT load_id, line_no, line FROM otc_trades_raw_before_013 '
            'WHERE load_id = %s ORDER BY line_no', part, loaded);
        EXECUTE format('ALTER TABLE otc_trades_raw ATTACH PARTITION %I FOR VALUES IN (%s)',
            part, loaded);
    END LOOP;
END
$$;

DROP TABLE otc_trades_raw_before_013;

-- As in migration 010, over the partitioned table (a pruned load has no lines here).
CREATE VIEW otc_trades_raw_lines AS
SELECT l.execution_id, l.source_file, r.load_id, r.line_no, r.line,
       otc_split_csv(r.line) AS fields, j.reason AS reject_reason
  FROM otc_trades_raw r
  JOIN otc_loads l ON l.id = r.load_id
  LEFT JOIN otc_trades_rejects j ON j.load_id = r.load_id AND j.line_no = r.line_no;
