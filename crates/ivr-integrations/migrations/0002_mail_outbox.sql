-- Outbox of mails (job-centre cancellations, out-of-hours messages). A row is
-- written before the caller hears the confirmation; a worker sends it and
-- marks it sent. The idempotency key makes a repeated enqueue a no-op and is
-- also the Message-ID of the mail, so a receiver can drop a duplicate.
CREATE TABLE mail_outbox (
    idempotency_key TEXT   NOT NULL PRIMARY KEY,
    municipality    TEXT   NOT NULL,
    kind            TEXT   NOT NULL,
    mail_from       TEXT   NOT NULL,
    mail_to         TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    body            TEXT   NOT NULL,
    created_at      BIGINT NOT NULL,
    state           TEXT   NOT NULL,
    state_changed_at BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    sent_at         BIGINT
);

CREATE INDEX mail_outbox_due ON mail_outbox (state, next_attempt_at);
