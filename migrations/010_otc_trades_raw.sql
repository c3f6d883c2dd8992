-- OTC ingest, raw side: what each load read, line by line, and why lines were rejected.
--
-- One otc_ingest execution loads one file once: a row in otc_loads, every line
-- of the file in otc_trades_raw (written by COPY, in file order), and the
-- lines that were not valid trades in otc_trades_rejects with their reason.
-- The rules that decide validity are otc_parse_line() below; app/services/
-- otc_normalizer.py applies them.

CREATE TABLE otc_loads (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The execution that ran the load. Unique: a retried execution finds its
    -- committed load and returns its summary instead of loading twice. No
    -- foreign key, so pruning old executions keeps the load history.
    execution_id  TEXT NOT NULL UNIQUE,
    source_file   TEXT NOT NULL,          -- as given: relative to SPINE_DATA_DIR
    file_bytes    BIGINT NOT NULL,
    file_sha256   TEXT,                   -- set when the load finishes
    market_tz     TEXT NOT NULL,          -- the zone trade dates were computed in
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    summary       JSONB                   -- otc_ingest's result: rows_read, inserted, ...
);

CREATE INDEX idx_otc_loads_started ON otc_loads (started_at DESC, id DESC);

-- Every line of every loaded file, as read (after the header, which is line 1).
-- COPY fills it directly: load_id and line_no come from column defaults that
-- only work inside a load (a session setting and a session-local sequence, so
-- line numbers follow COPY's row order without a per-row step in Python).
-- Append-only and bulk-written, hence no primary key and no foreign key (each
-- would cost a lookup per line); (load_id, line_no) is unique by construction.
CREATE TABLE otc_trades_raw (
    load_id  BIGINT NOT NULL DEFAULT current_setting('spine.otc_load_id')::bigint,
    line_no  BIGINT NOT NULL DEFAULT nextval('pg_temp.otc_line_seq'::text::regclass),
    -- The line's text: its seven comma-separated fields as in the file (UTF-8;
    -- bytes that were not UTF-8 text are U+FFFD; NULL for an empty line; a line
    -- longer than 64 KiB keeps its first 64 KiB).
    line     TEXT
);

-- A load's lines are appended together, so a block range index finds them cheaply.
CREATE INDEX idx_otc_trades_raw_load ON otc_trades_raw USING brin (load_id) WITH (pages_per_range = 16);

-- Lines that were not valid trades: the reason code (see otc_parse_line) and the text.
CREATE TABLE otc_trades_rejects (
    load_id  BIGINT NOT NULL REFERENCES otc_loads (id) ON DELETE CASCADE,
    line_no  BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    line     TEXT,                       -- at most 1,000 characters of it
    PRIMARY KEY (load_id, line_no)
);

-- Split one CSV line into fields (RFC 4180 quoting: "a,b" and "say ""hi"""),
-- or NULL when its quotes are unbalanced or misplaced.
CREATE FUNCTION otc_split_csv(line text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN strpos(line, '"') = 0 THEN string_to_array(line, ',')
        -- Each match is one field and its comma; they must tile the whole line.
        WHEN (SELECT string_agg(m[1] || ',', '' ORDER BY n)
                FROM regexp_matches(line || ',', '("(?:[^"]|"")*"|[^",]*),', 'g')
                     WITH ORDINALITY AS t (m, n)) = line || ','
        THEN (SELECT array_agg(CASE WHEN left(m[1], 1) = '"'
                                    THEN replace(substr(m[1], 2, length(m[1]) - 2), '""', '"')
                                    ELSE m[1] END ORDER BY n)
                FROM regexp_matches(line || ',', '("(?:[^"]|"")*"|[^",]*),', 'g')
                     WITH ORDINALITY AS t (m, n))
    END
$$;

-- Is `s` an ISO-8601 date and time with a UTC offset that PostgreSQL can cast,
-- with a real calendar date, a year in 1900..2999 and an offset within ±14:59?
CREATE FUNCTION otc_valid_timestamptz(s text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE
        WHEN m IS NULL THEN false
        WHEN m[1]::int NOT BETWEEN 1900 AND 2999 OR m[2]::int NOT BETWEEN 1 AND 12 THEN false
        ELSE m[3]::int BETWEEN 1 AND (CASE
                WHEN m[2]::int IN (4, 6, 9, 11) THEN 30
                WHEN m[2]::int <> 2 THEN 31
                WHEN m[1]::int % 4 = 0 AND (m[1]::int % 100 <> 0 OR m[1]::int % 400 = 0) THEN 29
                ELSE 28 END)
            AND m[4]::int <= 23 AND m[5]::int <= 59 AND coalesce(m[6]::int, 0) <= 59
            AND coalesce(m[7]::int, 0) <= 14 AND coalesce(m[8]::int, 0) <= 59
    END
    FROM regexp_match(s, '^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:\.\d{1,9})?)?'
                         '(?:[Zz]|[+-](\d\d)(?::?(\d\d))?)$') AS m
$$;

-- The ingest contract's rules for one line: either a reason code (and nothing
-- else) or the typed trade. The first rule a line breaks is its reason:
--   blank_line, line_too_long (over 4,096 characters), invalid_bytes (not UTF-8
--   text, or NUL/CR characters), malformed_csv (bad quoting), wrong_column_count;
--   then per field, in file order: missing_<field> (empty), and
--   bad_trade_id (over 64 characters or control characters),
--   bad_symbol (not 1-12 of A-Z 0-9 . -),
--   executed_at_without_offset, bad_executed_at (not ISO-8601 or not a real time),
--   bad_price (not a decimal number, or 10^12 or more), price_too_precise (more than
--   6 decimals), non_positive_price,
--   bad_size (not a whole number, or beyond BIGINT), non_positive_size,
--   bad_side (not B, S, BUY or SELL in any case), bad_venue (not 4 of A-Z).
-- Fields are trimmed of spaces and tabs; side is normalized to B or S.
-- app/services/otc_connector.py lets the common, plainly valid lines skip this
-- function; such a line must get the same values here (the tests check it).
CREATE FUNCTION otc_parse_line(
    line text,
    OUT reason text, OUT trade_id text, OUT symbol text, OUT executed_at timestamptz,
    OUT price numeric(18, 6), OUT size bigint, OUT side text, OUT venue text
)
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
DECLARE
    f text[];
    v_trade_id text;
    v_symbol text;
    v_executed_at text;
    v_price text;
    v_size text;
    v_side text;
    v_venue text;
BEGIN
    IF line IS NULL OR btrim(line, E' \t') = '' THEN reason := 'blank_line'; RETURN; END IF;
    IF length(line) > 4096 THEN reason := 'line_too_long'; RETURN; END IF;
    IF strpos(line, U&'\FFFD') > 0 THEN reason := 'invalid_bytes'; RETURN; END IF;
    f := otc_split_csv(line);
    IF f IS NULL THEN reason := 'malformed_csv'; RETURN; END IF;
    IF cardinality(f) <> 7 THEN reason := 'wrong_column_count'; RETURN; END IF;
    v_trade_id := btrim(f[1], E' \t');
    v_symbol := btrim(f[2], E' \t');
    v_executed_at := btrim(f[3], E' \t');
    v_price := btrim(f[4], E' \t');
    v_size := btrim(f[5], E' \t');
    v_side := upper(btrim(f[6], E' \t'));
    v_venue := btrim(f[7], E' \t');

    IF v_trade_id = '' THEN reason := 'missing_trade_id'; RETURN; END IF;
    IF length(v_trade_id) > 64 OR v_trade_id ~ '[[:cntrl:]]' THEN
        reason := 'bad_trade_id'; RETURN;
    END IF;

    IF v_symbol = '' THEN reason := 'missing_symbol'; RETURN; END IF;
    IF v_symbol !~ '^[A-Z0-9.-]{1,12}$' THEN reason := 'bad_symbol'; RETURN; END IF;

    IF v_executed_at = '' THEN reason := 'missing_executed_at'; RETURN; END IF;
    IF v_executed_at ~ '^\d{4}-\d\d-\d\d([Tt ]\d\d:\d\d(:\d\d(\.\d+)?)?)?$' THEN
        reason := 'executed_at_without_offset'; RETURN;
    END IF;
    IF NOT otc_valid_timestamptz(v_executed_at) THEN reason := 'bad_executed_at'; RETURN; END IF;

    IF v_price = '' THEN reason := 'missing_price'; RETURN; END IF;
    IF v_price !~ '^[+-]?\d+(\.\d+)?$' THEN reason := 'bad_price'; RETURN; END IF;
    IF length(substring(v_price FROM '\.(\d+)$')) > 6 THEN
        reason := 'price_too_precise'; RETURN;
    END IF;
    IF v_price::numeric <= 0 THEN reason := 'non_positive_price'; RETURN; END IF;
    IF v_price::numeric >= 1e12 THEN reason := 'bad_price'; RETURN; END IF;

    IF v_size = '' THEN reason := 'missing_size'; RETURN; END IF;
    IF v_size !~ '^[+-]?\d+$' THEN reason := 'bad_size'; RETURN; END IF;
    IF v_size::numeric <= 0 THEN reason := 'non_positive_size'; RETURN; END IF;
    IF v_size::numeric > 9223372036854775807 THEN reason := 'bad_size'; RETURN; END IF;

    IF v_side = '' THEN reason := 'missing_side'; RETURN; END IF;
    IF v_side NOT IN ('B', 'S', 'BUY', 'SELL') THEN reason := 'bad_side'; RETURN; END IF;

    IF v_venue = '' THEN reason := 'missing_venue'; RETURN; END IF;
    IF v_venue !~ '^[A-Z]{4}$' THEN reason := 'bad_venue'; RETURN; END IF;

    trade_id := v_trade_id;
    symbol := v_symbol;
    executed_at := v_executed_at::timestamptz;
    price := v_price::numeric(18, 6);
    size := v_size::bigint;
    side := left(v_side, 1);
    venue := v_venue;
END
$$;

-- The raw lines with their load's execution and file, their fields and their
-- fate (NULL: became or matched a trade). For people and the API, not hot paths.
CREATE VIEW otc_trades_raw_lines AS
SELECT l.execution_id, l.source_file, r.load_id, r.line_no, r.line,
       otc_split_csv(r.line) AS fields, j.reason AS reject_reason
  FROM otc_trades_raw r
  JOIN otc_loads l ON l.id = r.load_id
  LEFT JOIN otc_trades_rejects j ON j.load_id = r.load_id AND j.line_no = r.line_no;

-- Loads append and never update raw rows: vacuum for visibility and analyze often.
ALTER TABLE otc_trades_raw SET (autovacuum_vacuum_insert_scale_factor = 0.05, autovacuum_analyze_scale_factor = 0.05);
