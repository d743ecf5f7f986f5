-- Parked outbox rows (issue 15).
--
-- A row the relay gave up on (too large for its topic, refused for good, unreadable, or
-- failing past the attempt limit) stays where it is, marked parked (Unix milliseconds),
-- with the reason. Staying in place keeps its id, so its key's later rows still sort
-- behind it: the relay claims only lanes whose head is not parked, so they wait until a
-- person runs `event-bus outbox retry` (clears the mark) or `event-bus outbox drop`.
ALTER TABLE event_bus_outbox ADD COLUMN parked_at_ms INTEGER;
ALTER TABLE event_bus_outbox ADD COLUMN parked_reason TEXT;

CREATE INDEX IF NOT EXISTS event_bus_outbox_parked ON event_bus_outbox (id) WHERE parked_at_ms IS NOT NULL;
