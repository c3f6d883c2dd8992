-- FINRA Reg SHO daily short sale volume: one file per (trading day, market).
--
-- One regsho_ingest execution loads one file once: a row in regsho_loads, the
-- lines that were not valid rows in regsho_rejects with their reason, and the
-- file's rows in regsho_daily_volume, which always holds the latest published
-- version of each (day, market); regsho_files says which load that is. The
-- derived short_volume_daily dataset (regsho_compute, one day at a time) sums
-- the facility files per symbol into regsho_short_volume_daily and checks
-- CNMS against them (regsho_reconciliation, regsho_days). See app/regsho/.
--
-- Symbols are case-sensitive (`CPK` and `CpK` are two securities) and kept
-- exactly as published; they sort by bytes (COLLATE "C"), so keyset pages do
-- not depend on the server's locale. Volumes are NUMERIC: exact, whatever
-- fractions a publisher may add.

CREATE TABLE regsho_loads (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique: a retried execution finds its committed load and returns its summary.
    execution_id  TEXT NOT NULL UNIQUE,
    source_file   TEXT NOT NULL,              -- as given: relative to SPINE_DATA_DIR
    file_bytes    BIGINT NOT NULL,
    file_sha256   TEXT,                       -- set when the load finishes
    trade_date    DATE,                       -- set when the load finishes
    market        TEXT,                       -- CNMS, FNQC, FNRA, FNSQ, FNYX or FORF
    started_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at   TIMESTAMPTZ,
    summary       JSONB                       -- the pipeline's result: rows_read, inserted, ...
);

-- Lines that were not valid rows: the reason code and the text (the header is line 1).
CREATE TABLE regsho_rejects (
    load_id  BIGINT NOT NULL REFERENCES regsho_loads (id) ON DELETE CASCADE,
    line_no  BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    line     TEXT,                             -- at most 1,000 characters of it
    PRIMARY KEY (load_id, line_no)
);

-- The latest published version of each (day, market): one row per symbol.
CREATE TABLE regsho_daily_volume (
    trade_date           DATE NOT NULL,
    market               TEXT NOT NULL,
    symbol               TEXT COLLATE "C" NOT NULL,
    short_volume         NUMERIC NOT NULL CHECK (short_volume >= 0),
    short_exempt_volume  NUMERIC NOT NULL CHECK (short_exempt_volume >= 0),
    total_volume         NUMERIC NOT NULL CHECK (total_volume >= short_volume),
    reported_by          TEXT NOT NULL,        -- the file's Market column, e.g. 'B,Q,N'
    load_id              BIGINT NOT NULL,      -- the load that last set its volumes
    PRIMARY KEY (trade_date, market, symbol),
    CHECK (short_exempt_volume <= short_volume)
);

-- No index by symbol: a symbol's history probes the primary key once per loaded day
-- (a few hundred a year), and each day's bulk write maintains one index, not two.

-- The file each (day, market) holds now (an empty file, FNRA's often, is a file too).
CREATE TABLE regsho_files (
    trade_date   DATE NOT NULL,
    market       TEXT NOT NULL,
    load_id      BIGINT NOT NULL,
    rows         INT NOT NULL,
    rejected     INT NOT NULL,
    file_sha256  TEXT NOT NULL,
    loaded_at    TIMESTAMPTZ NOT NULL,          -- when its content last changed
    PRIMARY KEY (trade_date, market)
);

-- short_volume_daily: per symbol and day, the five facility files summed (CNMS left
-- out, so nothing is counted twice); segment 'otc' for FORF's symbols, 'nms' for the
-- others ('mixed' if a symbol were in both).
CREATE TABLE regsho_short_volume_daily (
    trade_date           DATE NOT NULL,
    symbol               TEXT COLLATE "C" NOT NULL,
    segment              TEXT NOT NULL CHECK (segment IN ('nms', 'otc', 'mixed')),
    short_volume         NUMERIC NOT NULL,
    short_exempt_volume  NUMERIC NOT NULL,
    total_volume         NUMERIC NOT NULL,
    short_ratio_pct      NUMERIC,              -- regsho_pct(short, total): NULL when total is 0
    markets              TEXT[] NOT NULL,      -- the facility files that reported it
    PRIMARY KEY (trade_date, symbol)
);

-- A symbol's history probes the primary key once per computed day (regsho_days).

-- A computed day: its totals by segment and its reconciliation (CNMS against the sum
-- of FNQC, FNSQ, FNYX and FNRA): 'clean', 'mismatched', or 'incomplete' when CNMS
-- or one of those files is not loaded.
CREATE TABLE regsho_days (
    trade_date            DATE PRIMARY KEY,
    computed_at           TIMESTAMPTZ NOT NULL,
    markets               TEXT[] NOT NULL,     -- the files loaded when it was computed
    nms_symbols           INT NOT NULL,
    otc_symbols           INT NOT NULL,
    nms_short_volume      NUMERIC NOT NULL,
    nms_total_volume      NUMERIC NOT NULL,
    otc_short_volume      NUMERIC NOT NULL,
    otc_total_volume      NUMERIC NOT NULL,
    reconciliation        TEXT NOT NULL CHECK (reconciliation IN ('clean', 'mismatched', 'incomplete')),
    mismatched_symbols    INT NOT NULL
);

-- The symbols of a day where CNMS differs from the sum of the NMS facility files
-- (a symbol missing on one side counts as 0 there).
CREATE TABLE regsho_reconciliation (
    trade_date                 DATE NOT NULL,
    symbol                     TEXT COLLATE "C" NOT NULL,
    cnms_short_volume          NUMERIC NOT NULL,
    cnms_short_exempt_volume   NUMERIC NOT NULL,
    cnms_total_volume          NUMERIC NOT NULL,
    facilities_short_volume         NUMERIC NOT NULL,
    facilities_short_exempt_volume  NUMERIC NOT NULL,
    facilities_total_volume         NUMERIC NOT NULL,
    PRIMARY KEY (trade_date, symbol)
);

-- 100 x part / whole rounded to 4 decimals, exactly (as finra_pct: the division keeps
-- 30 decimals, so round() sees the true quotient's digits). NULL when whole is 0.
CREATE FUNCTION regsho_pct(part numeric, whole numeric) RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN whole > 0 THEN round((100 * part)::numeric(70, 30) / whole, 4) END
$$;

-- The change of a ratio in percentage points, from the exact ratios (not the rounded
-- ones): 100 x short / total - 100 x prev_short / prev_total, rounded to 4 decimals.
-- NULL when either total is 0 or NULL.
CREATE FUNCTION regsho_pp(short numeric, total numeric, prev_short numeric, prev_total numeric)
RETURNS numeric
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN total > 0 AND prev_total > 0
                THEN round((100 * short)::numeric(70, 30) / total
                           - (100 * prev_short)::numeric(70, 30) / prev_total, 4) END
$$;
