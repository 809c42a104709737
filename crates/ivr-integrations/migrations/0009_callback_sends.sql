-- Puzzel's callback API has no idempotency key: a hand-off records that a
-- send started before the request leaves (sent_at), and clears it once the
-- outcome is known. A claimed row that still has sent_at was sent by a worker
-- that died (or lost the database) before it learned the outcome: it is sent
-- again (a callback is never dropped) and counted in uncertain_sends, so an
-- operator can see that Puzzel may hold it twice.
ALTER TABLE callback_requests ADD COLUMN sent_at BIGINT;
ALTER TABLE callback_requests ADD COLUMN uncertain_sends BIGINT NOT NULL DEFAULT 0;
