-- Normalized OTC trades: one row per trade_id, holding its latest values.
-- A load inserts new trade ids and overwrites corrected ones (see
-- app/services/otc_normalizer.py); a line identical to the stored trade
-- changes nothing, not even load_id.
CREATE TABLE otc_trades (
    trade_id     TEXT PRIMARY KEY,
    symbol       TEXT NOT NULL,
    executed_at  TIMESTAMPTZ NOT NULL,
    -- executed_at's calendar date in SPINE_MARKET_TZ when the trade was loaded
    -- (the zone is recorded in otc_loads.market_tz).
    trade_date   DATE NOT NULL,
    price        NUMERIC(18, 6) NOT NULL CHECK (price > 0),
    size         BIGINT NOT NULL CHECK (size > 0),
    side         TEXT NOT NULL CHECK (side IN ('B', 'S')),
    venue        TEXT NOT NULL,
    -- Provenance: the load and line that last set these values.
    load_id      BIGINT NOT NULL,
    line_no      BIGINT NOT NULL
);

-- The API's trades query (symbol, date range, ordered by date, time, id, keyset
-- pages) and the metrics recompute of given (symbol, date) pairs.
CREATE INDEX idx_otc_trades_symbol_date ON otc_trades (symbol, trade_date, executed_at, trade_id);
