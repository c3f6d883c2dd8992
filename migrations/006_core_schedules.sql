-- Schedules: cron or interval schedules that the worker pools fire exactly once per slot.
--
-- A fire is one transaction: it inserts the slot into schedule_fires (unique
-- per schedule and slot), the execution and its `created` event, and moves
-- next_fire_at on. The unique index is what makes a slot fire once however
-- many pools race for it; FOR UPDATE SKIP LOCKED on the schedule row only
-- spares them the wasted work.
CREATE TABLE schedules (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name                  TEXT NOT NULL UNIQUE,
    pipeline              TEXT NOT NULL,
    params                JSONB NOT NULL DEFAULT '{}'::jsonb,
    lane                  TEXT NOT NULL DEFAULT 'normal' CHECK (lane IN ('normal', 'backfill')),
    cron                  TEXT,
    interval_seconds      INTEGER CHECK (interval_seconds >= 1),
    timezone              TEXT NOT NULL,
    enabled               BOOLEAN NOT NULL DEFAULT true,
    misfire_grace_seconds INTEGER NOT NULL DEFAULT 300 CHECK (misfire_grace_seconds >= 0),
    next_fire_at          TIMESTAMPTZ NOT NULL,
    last_fired_at         TIMESTAMPTZ,
    created_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at            TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- Exactly one of a cron expression and an interval.
    CHECK ((cron IS NULL) <> (interval_seconds IS NULL))
);

-- The scheduler's one query: enabled schedules whose next slot has come.
CREATE INDEX idx_schedules_due ON schedules (next_fire_at) WHERE enabled;

-- One row per fired slot (manual = a "run now", which is no slot). No foreign
-- key to executions: pruning executions must not pay for a check per row here,
-- and a fire whose execution was pruned is still history.
CREATE TABLE schedule_fires (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id  BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    fire_at      TIMESTAMPTZ NOT NULL,
    manual       BOOLEAN NOT NULL DEFAULT false,
    execution_id TEXT,
    fired_at     TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);

-- A slot fires once: any number of pools, any number of hosts.
CREATE UNIQUE INDEX uq_schedule_fires_slot ON schedule_fires (schedule_id, fire_at) WHERE NOT manual;
-- A schedule's latest fires (GET /schedules/{name}).
CREATE INDEX idx_schedule_fires_recent ON schedule_fires (schedule_id, id DESC);

-- Slots that were not fired because the pools were down (or too late for
-- misfire_grace_seconds): one row per run of skipped slots, so an operator sees them.
CREATE TABLE schedule_skips (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id BIGINT NOT NULL REFERENCES schedules (id) ON DELETE CASCADE,
    first_slot  TIMESTAMPTZ NOT NULL,
    last_slot   TIMESTAMPTZ NOT NULL,
    slots       INTEGER NOT NULL CHECK (slots >= 1),
    reason      TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    CHECK (first_slot <= last_slot)
);

CREATE INDEX idx_schedule_skips_recent ON schedule_skips (schedule_id, id DESC);
