-- Callback requests ordered by callers (use case 2). Portable SQL: the same
-- file runs on SQLite and PostgreSQL. Times are milliseconds since the Unix
-- epoch (UTC) in BIGINT so both backends store and compare them the same way.
CREATE TABLE callback_requests (
    call_ref         TEXT   NOT NULL,
    kind             TEXT   NOT NULL,
    municipality     TEXT   NOT NULL,
    phone            TEXT   NOT NULL,
    topic            TEXT   NOT NULL,
    lang             TEXT   NOT NULL,
    window_start     BIGINT NOT NULL,
    window_end       BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    state            TEXT   NOT NULL,
    state_changed_at BIGINT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  BIGINT NOT NULL,
    lease_until      BIGINT,
    last_error       TEXT,
    external_ref     TEXT,
    handed_off_at    BIGINT,
    done_at          BIGINT,
    failed_at        BIGINT,
    PRIMARY KEY (call_ref, kind)
);

CREATE INDEX callback_requests_due ON callback_requests (state, next_attempt_at);
CREATE INDEX callback_requests_created ON callback_requests (created_at);
