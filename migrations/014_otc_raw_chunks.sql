-- Raw lines stored as compressed chunks of lines instead of one row per line.
--
-- A row per line cost about 110 bytes a line (a 24-byte tuple header, a line
-- pointer, load_id and line_no, then the text): more than the file itself. Now
-- each load's partition holds one row per chunk of consecutive lines (as the
-- connector sends them, about 1 MiB), each line ending with LF; TOAST
-- compresses the chunk (lz4 where the server has it), so the lines take a
-- fraction of the file's bytes, and the COPY writes a few dozen rows per
-- million lines instead of a million.
--
-- otc_trades_raw keeps its meaning and its columns (load_id, line_no, line;
-- NULL for an empty line) as a view over the chunks, so the raw-lines view,
-- the normalizer's reads and people's queries are unchanged. A filter on
-- load_id reaches the partitions (one per load, still otc_trades_raw_<load id>,
-- still dropped by `spine data prune-raw`).
--
-- Existing lines move into chunks of 10,000 lines, one partition per load.

CREATE TABLE otc_raw_chunks (
    load_id     BIGINT NOT NULL,
    first_line  BIGINT NOT NULL,    -- the line number of the chunk's first line
    line_count  INTEGER NOT NULL CHECK (line_count > 0),
    lines       TEXT NOT NULL       -- line_count lines, each ending with LF
) PARTITION BY LIST (load_id);

-- lz4 compresses and decompresses several times faster than pglz; a server built
-- without it keeps the default.
DO $$
BEGIN
    ALTER TABLE otc_raw_chunks ALTER COLUMN lines SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported THEN
    NULL;
END
$$;

DROP VIEW otc_trades_raw_lines;
ALTER TABLE otc_trades_raw RENAME TO otc_trades_raw_before_014;

DO $$
DECLARE
    loaded bigint;
    part text;
BEGIN
    FOR loaded IN
        SELECT substr(c.relname, length('otc_trades_raw_') + 1)::bigint
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'otc_trades_raw_before_014'::regclass
         ORDER BY 1
    LOOP
        part := 'otc_trades_raw_' || loaded;
        EXECUTE format('ALTER TABLE %I RENAME TO %I', part, part || '_before_014');
        -- As app/otc/loads.py creates a load's partition.
        EXECUTE format(
            'CREATE TABLE %I (LIKE otc_raw_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING COMPRESSION,'
            ' CHECK (load_id = %s))', part, loaded);
        -- Line numbers of a load are consecutive from 2, so each group is a run of lines.
        EXECUTE format(
            'INSERT INTO %I (load_id, first_line, line_count, lines) '
            'SELECT %s, min(line_no), count(*), '
            '       string_agg(coalesce(line, '''') || E''\n'', '''' ORDER BY line_no) '
            '  FROM %I GROUP BY (line_no - 2) / 10000 ORDER BY 2',
            part, loaded, part || '_before_014');
        EXECUTE format('ALTER TABLE otc_raw_chunks ATTACH PARTITION %I FOR VALUES IN (%s)',
            part, loaded);
    END LOOP;
END
$$;

DROP TABLE otc_trades_raw_before_014;

-- Every line of every retained load: the chunk split at LF (its last, empty piece
-- dropped), numbered from the chunk's first line.
CREATE VIEW otc_trades_raw AS
SELECT c.load_id, c.first_line + u.n - 1 AS line_no, nullif(u.line, '') AS line
  FROM otc_raw_chunks c
 CROSS JOIN LATERAL unnest(string_to_array(c.lines, E'\n')) WITH ORDINALITY AS u (line, n)
 WHERE u.n <= c.line_count;

-- As in migrations 010 and 013.
CREATE VIEW otc_trades_raw_lines AS
SELECT l.execution_id, l.source_file, r.load_id, r.line_no, r.line,
       otc_split_csv(r.line) AS fields, j.reason AS reject_reason
  FROM otc_trades_raw r
  JOIN otc_loads l ON l.id = r.load_id
  LEFT JOIN otc_trades_rejects j ON j.load_id = r.load_id AND j.line_no = r.line_no;
