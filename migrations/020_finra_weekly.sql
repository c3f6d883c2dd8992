-- FINRA OTC Transparency: weekly share and trade counts per (symbol, venue).
--
-- One finra_weekly_ingest execution loads one file once: a row in
-- finra_loads, every line in finra_weekly_raw (COPY, file order), the lines
-- that were not valid rows in finra_weekly_rejects with their reason, and the
-- file's rows in finra_weekly_volume, which always holds the latest published
-- version of each (week, tier). See app/finra/normalize.py.

CREATE TABLE finra_loads (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique: a retried execution finds its committed load and returns its
    -- summary instead of loading twice. No foreign key, so pruning old
    -- executions keeps the load history.
    execution_id      TEXT NOT NULL UNIQUE,
    source_file       TEXT NOT NULL,          -- as given: relative to SPINE_DATA_DIR
    file_bytes        BIGINT NOT NULL,
    file_sha256       TEXT,                   -- set when the load finishes
    week_start        DATE,                   -- set when the load finishes
    last_update_date  DATE,                   -- the file's lastUpdateDate
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    summary           JSONB                   -- the pipeline's result: rows_read, inserted, ...
);

-- Every line of every loaded file as read (the header is line 1, so data
-- starts at 2). Append-only and bulk-written: no key, a block range index.
CREATE TABLE finra_weekly_raw (
    load_id  BIGINT NOT NULL,
    line_no  BIGINT NOT NULL,
    line     TEXT                               -- UTF-8; undecodable bytes are U+FFFD
);

CREATE INDEX idx_finra_weekly_raw_load ON finra_weekly_raw USING brin (load_id);

-- Lines that were not valid rows: the reason code and the text.
CREATE TABLE finra_weekly_rejects (
    load_id  BIGINT NOT NULL REFERENCES finra_loads (id) ON DELETE CASCADE,
    line_no  BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    line     TEXT,                              -- at most 1,000 characters of it
    PRIMARY KEY (load_id, line_no)
);

-- The latest published version of each (week, tier): one row per (symbol, MPID).
CREATE TABLE finra_weekly_volume (
    week_start        DATE NOT NULL CHECK (extract(isodow FROM week_start) = 1),
    tier              TEXT NOT NULL,            -- tierDescription, e.g. 'OTC', 'NMS Tier 1'
    symbol            TEXT NOT NULL,
    issue_name        TEXT NOT NULL,
    mpid              TEXT NOT NULL,
    participant_name  TEXT NOT NULL,
    shares            BIGINT NOT NULL CHECK (shares >= 0),
    trades            BIGINT NOT NULL CHECK (trades >= 0),
    last_update_date  DATE NOT NULL,            -- of the file that last loaded this week and tier
    load_id           BIGINT NOT NULL,          -- the load that last set shares, trades or names
    PRIMARY KEY (week_start, tier, symbol, mpid)
);

-- One symbol's history, one venue's history.
CREATE INDEX idx_finra_weekly_volume_symbol ON finra_weekly_volume (symbol, week_start);
CREATE INDEX idx_finra_weekly_volume_mpid ON finra_weekly_volume (mpid, week_start);

-- 100 x part / whole rounded to 4 decimals, exactly: the division keeps 30
-- decimals, so round() sees the true quotient's digits (no double rounding
-- for any whole below 10^25). NULL when whole is 0 or NULL.
CREATE FUNCTION finra_pct(part numeric, whole numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN whole > 0 THEN round((100 * part)::numeric(70, 30) / whole, 4) END
$$;

-- Herfindahl-Hirschman index from the sum of squared venue shares and the
-- total: sum((100 x v / total)^2) = 10000 x sum(v^2) / total^2, computed
-- exactly and rounded to 2 decimals; NULL when the total is 0.
CREATE FUNCTION finra_hhi(sum_squares numeric, total numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN total > 0
                THEN round((10000 * sum_squares)::numeric(70, 30) / (total * total), 2) END
$$;

-- A YYYY-MM-DD date with a real calendar day and a year in 1900..2999, or NULL.
-- One expression and not STRICT, so the planner inlines it (no call per row).
CREATE FUNCTION finra_parse_date(s text) RETURNS date
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN translate(s, '0123456789', '9999999999') <> '9999-99-99' THEN NULL
        WHEN substr(s, 1, 4)::int NOT BETWEEN 1900 AND 2999
          OR substr(s, 6, 2)::int NOT BETWEEN 1 AND 12 THEN NULL
        WHEN substr(s, 9, 2)::int BETWEEN 1 AND (CASE
                WHEN substr(s, 6, 2)::int IN (4, 6, 9, 11) THEN 30
                WHEN substr(s, 6, 2)::int <> 2 THEN 31
                WHEN substr(s, 1, 4)::int % 4 = 0
                 AND (substr(s, 1, 4)::int % 100 <> 0 OR substr(s, 1, 4)::int % 400 = 0) THEN 29
                ELSE 28 END)
        THEN make_date(substr(s, 1, 4)::int, substr(s, 6, 2)::int, substr(s, 9, 2)::int)
    END
$$;
