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
-- What parking goes by, apart from `attempts` (which counts every failed attempt, for
-- the backoff and `outbox status`): the failed attempts that count towards parking (not
-- those of a batch during a broker outage, nor a refusal the broker gave for a whole
-- produce batch rather than for this row), and when the first of them happened, so a
-- row is parked only after failing for a while (a topic or an ACL created a moment
-- late needs no person).
ALTER TABLE event_bus.outbox ADD COLUMN park_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE event_bus.outbox ADD COLUMN first_failed_at TIMESTAMPTZ;

-- `outbox parked` and the parked count of `outbox status`.
CREATE INDEX outbox_parked ON event_bus.outbox (id) WHERE parked_at IS NOT NULL;
-- The relay's idle wait (the next retry) and the failing keys of `outbox status` look at
-- failing rows that are not parked: parked rows leave these indexes, so an idle poll
-- does not step over every parked row.
DROP INDEX outbox_failing;
CREATE INDEX outbox_failing ON event_bus.outbox (next_attempt_at) WHERE attempts > 0 AND parked_at IS NULL;
CREATE INDEX outbox_failing_lanes ON event_bus.outbox (lane, id) WHERE attempts > 0 AND parked_at IS NULL;
