-- signal-bridge event bus outbox (SQLite, one relay per database).
--
-- One row = one Kafka record the producer would have sent. Rows of one lane (a hash of
-- topic and key bytes) are published in id order; the relay deletes a row only after the
-- broker acknowledged it. Times are Unix milliseconds (UTC).
CREATE TABLE IF NOT EXISTS event_bus_outbox (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    lane               INTEGER NOT NULL,
    topic              TEXT    NOT NULL,
    message_key        BLOB,
    payload            BLOB    NOT NULL,
    headers            TEXT    NOT NULL,
    event_type         TEXT    NOT NULL,
    event_id           TEXT    NOT NULL,
    key_text           TEXT,
    created_at_ms      INTEGER NOT NULL,
    attempts           INTEGER NOT NULL DEFAULT 0,
    last_error         TEXT,
    next_attempt_at_ms INTEGER NOT NULL
);

CREATE INDEX IF NOT EXISTS event_bus_outbox_lane_id ON event_bus_outbox (lane, id);
CREATE INDEX IF NOT EXISTS event_bus_outbox_failing ON event_bus_outbox (next_attempt_at_ms) WHERE attempts > 0;
