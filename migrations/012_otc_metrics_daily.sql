-- Daily per-symbol metrics, recomputed from otc_trades for exactly the
-- (symbol, trade_date) pairs a load changed (app/services/otc_metrics.py).
-- Everything is NUMERIC and exact:
--   total_volume   = sum(size)
--   total_notional = sum(price * size)           (scale 6, exact)
--   vwap           = total_notional / total_volume, rounded half up to 10 decimals
--   high_price, low_price = max(price), min(price)
CREATE TABLE otc_metrics_daily (
    symbol          TEXT NOT NULL,
    trade_date      DATE NOT NULL,
    trade_count     BIGINT NOT NULL CHECK (trade_count > 0),
    total_volume    NUMERIC NOT NULL,
    total_notional  NUMERIC NOT NULL,
    vwap            NUMERIC NOT NULL,
    high_price      NUMERIC(18, 6) NOT NULL,
    low_price       NUMERIC(18, 6) NOT NULL,
    -- When these values last changed (a recompute that finds them equal leaves them).
    computed_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The API's order (symbol, date) with keyset pages, and per-symbol date ranges.
    PRIMARY KEY (symbol, trade_date)
);

-- Date ranges across all symbols, and range recomputes without a symbol.
CREATE INDEX idx_otc_metrics_daily_date ON otc_metrics_daily (trade_date, symbol);
