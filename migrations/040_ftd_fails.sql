-- SEC fails-to-deliver: per settlement date, every security with a balance of
-- shares that failed to be delivered, published twice a month (half-months).
--
-- One sec_ftd_ingest execution loads one file once: a row in ftd_loads, the
-- lines that were not valid rows in ftd_rejects with their reason, and the
-- file's rows in ftd_fails, which always holds the latest published version
-- of each half-month (`period`, e.g. 2022-12a); ftd_periods says which load
-- that is and what its trailers stated. See app/ftd/normalize.py.

CREATE TABLE ftd_loads (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Unique: a retried execution finds its committed load and returns its
    -- summary instead of loading twice. No foreign key to executions.
    execution_id      TEXT NOT NULL UNIQUE,
    source_file       TEXT NOT NULL,          -- as given: relative to SPINE_DATA_DIR
    file_bytes        BIGINT NOT NULL,
    file_sha256       TEXT,                   -- set when the load finishes
    period            TEXT,                   -- set when the load finishes
    started_at        TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at       TIMESTAMPTZ,
    summary           JSONB                   -- the pipeline's result: rows_read, inserted, ...
);

-- Lines that were not valid rows: the reason code and the text.
CREATE TABLE ftd_rejects (
    load_id  BIGINT NOT NULL REFERENCES ftd_loads (id) ON DELETE CASCADE,
    line_no  BIGINT NOT NULL,
    reason   TEXT NOT NULL,
    line     TEXT,                              -- at most 1,000 characters of it
    PRIMARY KEY (load_id, line_no)
);

-- Each loaded half-month: the load that made its rows, what its file's trailers
-- stated, and its stored rows' totals. A load replaces a period's rows whole, so
-- the totals are computed from them in the load's transaction (the periods
-- listing then reads ten rows, not every fail).
CREATE TABLE ftd_periods (
    period                  TEXT PRIMARY KEY CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])[ab]$'),
    load_id                 BIGINT NOT NULL REFERENCES ftd_loads (id),
    trailer_record_count    BIGINT NOT NULL,
    trailer_total_quantity  NUMERIC NOT NULL,
    rejected                BIGINT NOT NULL,
    rows                    BIGINT NOT NULL,
    securities              BIGINT NOT NULL,     -- distinct CUSIPs
    total_quantity          NUMERIC NOT NULL,
    settlement_dates        INT NOT NULL,
    first_date              DATE NOT NULL,
    last_date               DATE NOT NULL,
    loaded_at               TIMESTAMPTZ NOT NULL
);

-- One row per (settlement date, CUSIP), as the SEC published it: the symbol
-- as published (case kept), the description without its trailing spaces, the
-- price NULL where the SEC wrote `.` (unknown, never zero). CUSIPs and symbols
-- compare byte by byte (COLLATE "C"): cheaper to index, and `CpK` is not `CPK`.
CREATE TABLE ftd_fails (
    settlement_date  DATE NOT NULL,
    cusip            TEXT COLLATE "C" NOT NULL CHECK (length(cusip) = 9),
    period           TEXT NOT NULL,            -- its half-month (an ftd_periods row)
    symbol           TEXT COLLATE "C" NOT NULL,
    quantity         BIGINT NOT NULL CHECK (quantity >= 0),
    description      TEXT NOT NULL,
    price            NUMERIC CHECK (price >= 0),
    load_id          BIGINT NOT NULL,          -- the load that last set its values
    PRIMARY KEY (settlement_date, cusip)
);

-- A half-month's rows are a range of the primary key (its dates); these serve a
-- symbol's and a CUSIP's history. No more indexes and no foreign key: a load
-- writes 60,000 rows, and each costs every index's insert and a trigger call.
CREATE INDEX idx_ftd_fails_symbol ON ftd_fails (symbol, settlement_date);
CREATE INDEX idx_ftd_fails_cusip ON ftd_fails (cusip, settlement_date);

-- One character of a CUSIP's first eight, weighted as the check digit counts it:
-- its value (0-9, A-Z = 10-35, * @ # = 36-38), doubled at even positions, then
-- the sum of that number's digits.
CREATE FUNCTION ftd_cusip_term(c text, i int) RETURNS int
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*@#', substr(c, i, 1)) - 1)
            * (2 - i % 2)) / 10
         + ((strpos('0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ*@#', substr(c, i, 1)) - 1)
            * (2 - i % 2)) % 10
$$;

-- Whether a 9-character CUSIP's last digit is its check digit (the modulus 10
-- "double-add-double" rule). The shape is checked before (normalize.py).
CREATE FUNCTION ftd_cusip_check_ok(c text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (10 - (ftd_cusip_term(c, 1) + ftd_cusip_term(c, 2) + ftd_cusip_term(c, 3)
                  + ftd_cusip_term(c, 4) + ftd_cusip_term(c, 5) + ftd_cusip_term(c, 6)
                  + ftd_cusip_term(c, 7) + ftd_cusip_term(c, 8)) % 10) % 10
           = substr(c, 9, 1)::int
$$;
