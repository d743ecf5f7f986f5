-- The inbox (issue 16): which events each transactional receiver has handled.
--
-- One row = one event (`ce_id`) handled by one receiver in one consumer group, written
-- in the same transaction as the receiver's own writes, so both commit or neither does.
-- A delivery whose row already exists is a duplicate for that receiver and is skipped.
-- Local dispatch (no consumer) uses the group ''. Topic, partition and offset are where
-- the event was read, for operators; they are not part of the key (the same event read
-- again from a replay or a DLQ redrive is still a duplicate).
CREATE TABLE event_bus.inbox (
    consumer_group TEXT        NOT NULL,
    receiver       TEXT        NOT NULL,
    ce_id          UUID        NOT NULL,
    handled_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    topic          TEXT,
    "partition"    INTEGER,
    "offset"       BIGINT,
    PRIMARY KEY (consumer_group, receiver, ce_id)
);

-- Retention: `event-bus inbox prune` deletes the oldest rows first, in batches.
CREATE INDEX inbox_handled_at ON event_bus.inbox (handled_at);
