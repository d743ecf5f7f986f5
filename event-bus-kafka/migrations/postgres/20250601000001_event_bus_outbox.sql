-- signal-bridge event bus outbox (PostgreSQL).
--
-- Everything lives in the `event_bus` schema, created by the SDK before it runs these
-- migrations with `search_path = event_bus`, so they are tracked in
-- event_bus._sqlx_migrations, apart from the application's own sqlx migrations.
--
-- One row = one Kafka record the producer would have sent. Rows of one lane (a hash of
-- topic and key bytes) are published in id order; the relay deletes a row only after the
-- broker acknowledged it.
CREATE TABLE event_bus.outbox (
    id              BIGSERIAL   PRIMARY KEY,
    lane            BIGINT      NOT NULL,
    topic           TEXT        NOT NULL,
    message_key     BYTEA,
    payload         BYTEA       NOT NULL,
    headers         JSONB       NOT NULL,
    event_type      TEXT        NOT NULL,
    event_id        UUID        NOT NULL,
    key_text        TEXT,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    attempts        INTEGER     NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Per-lane order: the head of a lane, its followers, "is this key waiting?".
CREATE INDEX outbox_lane_id ON event_bus.outbox (lane, id);
-- Failing rows: status and the relay's next wake-up.
CREATE INDEX outbox_failing ON event_bus.outbox (next_attempt_at) WHERE attempts > 0;

-- Wakes relays (LISTEN event_bus_outbox) when rows are committed; NOTIFY is delivered at
-- commit, so transactional enqueues wake the relay only if the business data commits.
CREATE FUNCTION event_bus.outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('event_bus_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON event_bus.outbox
    FOR EACH STATEMENT EXECUTE FUNCTION event_bus.outbox_notify();
