-- Schedules (app.engine.schedules_sql): rows in and out, and the statements a fire is
-- made of (app.engine.scheduling puts them together: one transaction per fire).

-- name: db_now
SELECT now() AS now

-- name: notify_changed
-- Wake every pool's scheduler: a schedule's next slot may now be sooner.
SELECT pg_notify('spine_schedules', %s)

-- name: insert
INSERT INTO schedules (name, pipeline, params, lane, cron, interval_seconds, timezone,
                       enabled, misfire_grace_seconds, next_fire_at)
VALUES (%(name)s, %(pipeline)s, %(params)s, %(lane)s, %(cron)s, %(interval_seconds)s,
        %(timezone)s, %(enabled)s, %(grace)s, %(next_fire_at)s)
RETURNING id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
          misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at

-- name: upsert
-- Create or replace by name. Unchanged timing keeps its next slot (like PATCH): a
-- due slot still fires.
INSERT INTO schedules (name, pipeline, params, lane, cron, interval_seconds, timezone,
                       enabled, misfire_grace_seconds, next_fire_at)
VALUES (%(name)s, %(pipeline)s, %(params)s, %(lane)s, %(cron)s, %(interval_seconds)s,
        %(timezone)s, %(enabled)s, %(grace)s, %(next_fire_at)s)
ON CONFLICT (name) DO UPDATE SET
    pipeline = EXCLUDED.pipeline, params = EXCLUDED.params, lane = EXCLUDED.lane,
    cron = EXCLUDED.cron, interval_seconds = EXCLUDED.interval_seconds,
    timezone = EXCLUDED.timezone, enabled = EXCLUDED.enabled,
    misfire_grace_seconds = EXCLUDED.misfire_grace_seconds,
    next_fire_at = CASE
        WHEN (schedules.cron, schedules.interval_seconds, schedules.timezone,
              schedules.enabled)
             IS NOT DISTINCT FROM
             (EXCLUDED.cron, EXCLUDED.interval_seconds, EXCLUDED.timezone,
              EXCLUDED.enabled)
        THEN schedules.next_fire_at ELSE EXCLUDED.next_fire_at END,
    updated_at = now()
RETURNING id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
          misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at,
          (xmax = 0) AS created

-- name: update
UPDATE schedules SET
    name = %(name)s, pipeline = %(pipeline)s, params = %(params)s, lane = %(lane)s,
    cron = %(cron)s, interval_seconds = %(interval_seconds)s, timezone = %(timezone)s,
    enabled = %(enabled)s, misfire_grace_seconds = %(grace)s,
    next_fire_at = %(next_fire_at)s, updated_at = now()
WHERE id = %(id)s
RETURNING id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
          misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at

-- name: set_enabled
-- Pause or resume; a resume also sets the next slot.
UPDATE schedules
SET enabled = %(enabled)s, updated_at = now(),
    next_fire_at = COALESCE(%(next)s, next_fire_at)
WHERE name = %(name)s
RETURNING id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
          misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at

-- name: get
SELECT id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
       misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules WHERE name = %s

-- name: get_for_update
SELECT id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
       misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules WHERE name = %s
FOR UPDATE

-- name: list_page
-- By name; `after` is the last name of the previous page (keyset).
SELECT id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
       misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules
WHERE %(after)s::text IS NULL OR name > %(after)s
ORDER BY name LIMIT %(limit)s

-- name: delete
DELETE FROM schedules WHERE name = %s
RETURNING id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
          misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at

-- name: recent_fires
SELECT f.fire_at, f.manual, f.fired_at, f.execution_id, e.status
FROM schedule_fires f LEFT JOIN executions_all e ON e.id = f.execution_id
WHERE f.schedule_id = %s ORDER BY f.id DESC LIMIT %s

-- name: recent_skips
SELECT first_slot, last_slot, slots, reason, recorded_at FROM schedule_skips
WHERE schedule_id = %s ORDER BY id DESC LIMIT %s

-- name: claim_due
-- The due schedules no other pool holds (inside the caller's transaction).
SELECT id, name, pipeline, params, lane, cron, interval_seconds, timezone, enabled,
       misfire_grace_seconds, next_fire_at, last_fired_at, created_at, updated_at
FROM schedules
WHERE enabled AND next_fire_at <= %(now)s
ORDER BY next_fire_at
LIMIT %(batch)s
FOR UPDATE SKIP LOCKED

-- name: next_due
-- The earliest next slot of any enabled schedule (the scheduler sleeps until then).
SELECT min(next_fire_at) AS at FROM schedules WHERE enabled

-- name: fired_already
SELECT p.schedule_id, p.fire_at
FROM unnest(%s::bigint[], %s::timestamptz[]) AS p (schedule_id, fire_at)
WHERE EXISTS (
    SELECT 1 FROM schedule_fires f
    WHERE f.schedule_id = p.schedule_id AND f.fire_at = p.fire_at AND NOT f.manual)

-- name: record_fires
-- No ON CONFLICT: a slot a concurrent transaction fired fails this one whole
-- (nothing half-written); the next tick sees that fire and skips the slot.
INSERT INTO schedule_fires (schedule_id, fire_at, manual, execution_id)
SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::boolean[], %s::text[])

-- name: advance
UPDATE schedules s
SET next_fire_at = m.next_fire_at,
    last_fired_at = COALESCE(m.fired_slot, s.last_fired_at)
FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[])
    AS m (id, next_fire_at, fired_slot)
WHERE s.id = m.id

-- name: mark_fired
UPDATE schedules SET last_fired_at = %s WHERE id = %s

-- name: disable
UPDATE schedules SET enabled = false, updated_at = now() WHERE id = ANY(%s)

-- name: record_skips
INSERT INTO schedule_skips (schedule_id, first_slot, last_slot, slots, reason)
SELECT * FROM unnest(%s::bigint[], %s::timestamptz[], %s::timestamptz[],
                     %s::integer[], %s::text[])

-- name: notify_executions
-- After a fire's commit: wake the workers of one lane.
SELECT pg_notify('spine_executions', %s)
