-- Remote sources (app.engine.fetch, app.engine.remote): a host's request slots, and the
-- remote half of a materialization's source.

-- name: try_host_slot
-- Take one of a host's request slots (a session advisory lock on its connection):
-- true when taken. Slot n of host h is the lock (hashtext('spine:host:' || h), n).
SELECT pg_try_advisory_lock(hashtext('spine:host:' || %(host)s), %(slot)s) AS taken

-- name: wait_host_slot
-- Wait for one slot of a host, when none was free.
SELECT pg_advisory_lock(hashtext('spine:host:' || %(host)s), %(slot)s)

-- name: free_host_slot
SELECT pg_advisory_unlock(hashtext('spine:host:' || %(host)s), %(slot)s) AS freed

-- name: latest_remote
-- A partition's newest materialization: its sha256 and, when it was fetched, the URL and
-- the validators its next request sends (If-None-Match, If-Modified-Since).
SELECT id, source_url, source_validators, source_sha256, outcome
FROM dataset_materializations
WHERE dataset = %(dataset)s AND partition_key = %(key)s
ORDER BY id DESC
LIMIT 1

-- name: refresh_validators
-- A same body under new validators (a new ETag): the materialization holding that content
-- takes them, so the next request is conditional on what the publisher sends now.
UPDATE dataset_materializations
SET source_url = %(url)s, source_validators = %(validators)s::jsonb
WHERE id = %(id)s

-- name: asked_since
-- The logical keys among `keys` with an execution that ended (or began) after `since`:
-- partitions asked of the publisher recently, which a scan leaves alone for now.
SELECT logical_key
FROM executions
WHERE logical_key = ANY (%(keys)s::text[])
  AND coalesce(completed_at, created_at) >= %(since)s
GROUP BY logical_key
