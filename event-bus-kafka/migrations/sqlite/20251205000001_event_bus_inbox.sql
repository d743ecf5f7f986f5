-- The inbox (issue 16): which events each transactional receiver has handled.
--
-- One row = one event (`ce_id`, a UUID as text) handled by one receiver in one consumer
-- group, written in the same transaction as the receiver's own writes; a delivery whose
-- row already exists is a duplicate for that receiver and is skipped. Local dispatch
-- uses the group ''. Times are Unix milliseconds (UTC); topic, partition and offset
-- are where the event was read, for operators (see the PostgreSQL migration).
CREATE TABLE IF NOT EXISTS event_bus_inbox (
    consumer_group TEXT    NOT NULL,
    receiver       TEXT    NOT NULL,
    ce_id          TEXT    NOT NULL,
    handled_at_ms  INTEGER NOT NULL,
    topic          TEXT,
    "partition"    INTEGER,
    "offset"       INTEGER,
    PRIMARY KEY (consumer_group, receiver, ce_id)
);

-- Retention: `event-bus inbox prune` deletes the oldest rows first, in batches.
CREATE INDEX IF NOT EXISTS event_bus_inbox_handled_at ON event_bus_inbox (handled_at_ms);
