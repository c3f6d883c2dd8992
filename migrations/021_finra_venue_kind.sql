-- FINRA publishes ATS and non-ATS weekly volume as separate files (datasets
-- finra_ats_weekly and finra_otc_weekly). Both land in finra_weekly_volume,
-- told apart by venue_kind, which joins the key and the unit a load replaces:
-- (week, tier, venue_kind). A week's ATS file never touches its non-ATS rows.
--
-- Every row and load before this migration came from a non-ATS file. ADD
-- COLUMN with a constant default writes no row (PostgreSQL 11+ keeps the
-- value in the catalog); the default is then dropped so every later write
-- names its kind.

ALTER TABLE finra_loads
    ADD COLUMN venue_kind TEXT NOT NULL DEFAULT 'non_ats'
        CHECK (venue_kind IN ('ats', 'non_ats'));
ALTER TABLE finra_loads ALTER COLUMN venue_kind DROP DEFAULT;

ALTER TABLE finra_weekly_volume
    ADD COLUMN venue_kind TEXT NOT NULL DEFAULT 'non_ats'
        CHECK (venue_kind IN ('ats', 'non_ats'));
ALTER TABLE finra_weekly_volume ALTER COLUMN venue_kind DROP DEFAULT;

-- The key's prefix (week, tier, venue_kind) is the unit a file replaces, so
-- "is this kind stored for this week and tier" is one index probe.
ALTER TABLE finra_weekly_volume
    DROP CONSTRAINT finra_weekly_volume_pkey,
    ADD PRIMARY KEY (week_start, tier, venue_kind, symbol, mpid);

-- Whether both venue kinds are stored for every tier `symbol` has rows in for
-- `week`: ATS shares / all shares is only a share when both files are in
-- (one kind alone would read as 0% or 100%). With two kinds, both are stored
-- when the least is 'ats' and the greatest 'non_ats': min() and max() on the
-- key's prefix are each one index probe (an EXISTS could be planned as a scan
-- that reads the whole table when the kind is absent).
CREATE FUNCTION finra_both_kinds(week date, sym text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT NOT EXISTS (
        SELECT FROM (SELECT DISTINCT tier FROM finra_weekly_volume s
                      WHERE s.week_start = week AND s.symbol = sym) t
         WHERE (SELECT min(venue_kind) FROM finra_weekly_volume k
                 WHERE k.week_start = week AND k.tier = t.tier) IS DISTINCT FROM 'ats'
            OR (SELECT max(venue_kind) FROM finra_weekly_volume k
                 WHERE k.week_start = week AND k.tier = t.tier) IS DISTINCT FROM 'non_ats'
    )
$$;
