-- Parked outbox rows (issue 15).
--
-- A row the relay gave up on (too large for its topic, refused for good, unreadable, or
-- failing past the attempt limit) stays where it is, marked parked (Unix milliseconds),
-- with the reason. Staying in place keeps its id, so its key's later rows still sort
-- behind it: the relay claims only lanes whose head is not parked, so they wait until a
-- person runs `event-bus outbox retry` (clears the mark) or `event-bus outbox drop`.
ALTER TABLE event_bus_outbox ADD COLUMN parked_at_ms INTEGER;
ALTER TABLE event_bus_outbox ADD COLUMN parked_reason TEXT;
-- What parking goes by besides `attempts`: the failed attempts that count towards it
-- (not those during a broker outage, nor a refusal meant for a whole produce batch) and
-- when the first of them happened (Unix milliseconds); see the PostgreSQL migration.
ALTER TABLE event_bus_outbox ADD COLUMN park_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE event_bus_outbox ADD COLUMN first_failed_at_ms INTEGER;

CREATE INDEX IF NOT EXISTS event_bus_outbox_parked ON event_bus_outbox (id) WHERE parked_at_ms IS NOT NULL;
-- The relay's idle wait and the failing keys of `outbox status` skip parked rows.
DROP INDEX IF EXISTS event_bus_outbox_failing;
CREATE INDEX event_bus_outbox_failing ON event_bus_outbox (next_attempt_at_ms) WHERE attempts > 0 AND parked_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS event_bus_outbox_failing_lanes ON event_bus_outbox (lane, id) WHERE attempts > 0 AND parked_at_ms IS NULL;
