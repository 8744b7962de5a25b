-- What the queue store keeps beside BullMQ's tables when the queues run on Postgres (REDIS_URL unset):
-- the shared request timeline and the rejected-key records. UNLOGGED: written many times a second and
-- worth nothing after a crash (a timeline seconds long, records that lapse in 30 s), so no WAL.
CREATE UNLOGGED TABLE api_rate_timeline (
  key text PRIMARY KEY,
  -- The next free request slot, ms since the epoch by this server's clock.
  next_free_ms double precision NOT NULL
);
--> statement-breakpoint
-- p_slot_ms > 0: takes the next slot, returns how long the caller waits for it.
-- p_pause_ms > 0: pushes the timeline to at least now + pause (a 429), returns 0.
-- Both 0: reads only, returns how far ahead of now the next free slot is.
-- The row lock serialises every taker, and the clock is read once it is held.
CREATE FUNCTION take_api_slot(p_key text, p_slot_ms double precision, p_pause_ms double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
  v_now double precision;
  v_free double precision;
BEGIN
  -- NaN or infinity would stop the timeline for good, a negative width move it back.
  IF NOT (p_slot_ms >= 0 AND p_slot_ms < 'infinity' AND p_pause_ms >= 0 AND p_pause_ms < 'infinity') THEN
    RAISE EXCEPTION 'take_api_slot: slot % ms and pause % ms must be finite and not negative', p_slot_ms, p_pause_ms;
  END IF;
  IF p_slot_ms = 0 AND p_pause_ms = 0 THEN
    SELECT next_free_ms - extract(epoch FROM clock_timestamp()) * 1000 INTO v_free FROM api_rate_timeline WHERE key = p_key;
    RETURN greatest(coalesce(v_free, 0), 0);
  END IF;
  INSERT INTO api_rate_timeline (key, next_free_ms) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
  SELECT next_free_ms INTO v_free FROM api_rate_timeline WHERE key = p_key FOR UPDATE;
  v_now := extract(epoch FROM clock_timestamp()) * 1000;
  IF p_pause_ms > 0 THEN
    UPDATE api_rate_timeline SET next_free_ms = greatest(v_free, v_now + p_pause_ms) WHERE key = p_key;
    RETURN 0;
  END IF;
  UPDATE api_rate_timeline SET next_free_ms = greatest(v_free, v_now) + p_slot_ms WHERE key = p_key;
  RETURN greatest(v_free, v_now) - v_now;
END
$$;
--> statement-breakpoint
-- One row per worker whose key the API rejected (key-health.ts): the fact, never the key.
CREATE UNLOGGED TABLE key_rejections (
  entry text PRIMARY KEY,
  rejection jsonb NOT NULL,
  lapses_at timestamptz NOT NULL
);
--> statement-breakpoint
-- Which queue stores the workers of this database use, each mark lapsing unless renewed
-- (deployment-guard.ts): one with REDIS_URL and one without would take each other's queued
-- refreshes for lost and queue them again, for ever.
CREATE UNLOGGED TABLE queue_store_marks (
  kind text NOT NULL,
  worker text NOT NULL,
  lapses_at timestamptz NOT NULL,
  PRIMARY KEY (kind, worker)
);
