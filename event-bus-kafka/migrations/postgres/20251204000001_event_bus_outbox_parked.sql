-- Parked outbox rows (issue 15).
--
-- A row the relay gave up on (too large for its topic, refused for good, unreadable, or
-- failing past the attempt limit) stays where it is, marked parked, with the reason.
-- Staying in place keeps its id, so its key's later rows still sort behind it: the relay
-- claims only lanes whose head is not parked, so they wait (neither lost nor published
-- ahead of it) until a person runs `event-bus outbox retry` (clears the mark) or
-- `event-bus outbox drop` (deletes the row).
ALTER TABLE event_bus.outbox ADD COLUMN parked_at TIMESTAMPTZ;
ALTER TABLE event_bus.outbox ADD COLUMN parked_reason TEXT;

-- `outbox parked` and the parked count of `outbox status`.
CREATE INDEX outbox_parked ON event_bus.outbox (id) WHERE parked_at IS NOT NULL;
