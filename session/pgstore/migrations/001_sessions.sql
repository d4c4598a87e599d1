-- The session table of pgstore. Idempotent: pgstore runs it on every Open,
-- under an advisory lock so that several processes starting at once do not
-- race. {{schema}} and {{table}} are replaced by quoted identifiers.
CREATE SCHEMA IF NOT EXISTS {{schema}};

CREATE TABLE IF NOT EXISTS {{schema}}.{{table}} (
    key             text        PRIMARY KEY,
    data            bytea       NOT NULL,
    version         bigint      NOT NULL,
    idle_expiry     timestamptz NOT NULL,
    -- NULL: no absolute limit.
    absolute_expiry timestamptz,
    -- When the record stops being live: the earlier of the two expiries.
    expires_at      timestamptz NOT NULL
        GENERATED ALWAYS AS (LEAST(idle_expiry, COALESCE(absolute_expiry, 'infinity'::timestamptz))) STORED
);

-- The sweeper deletes by expires_at.
CREATE INDEX IF NOT EXISTS {{index}} ON {{schema}}.{{table}} (expires_at);
