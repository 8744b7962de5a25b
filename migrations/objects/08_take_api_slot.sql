-- The current definition of take_api_slot, the queue store's request timeline (both signatures).
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0014, 0020, which stay as they were.
-- p_slot_ms > 0: takes the next slot, returns how long the caller waits for it.
-- p_pause_ms > 0: pushes the timeline to at least now + pause (a 429), returns 0.
-- Both 0: reads only, returns how far ahead of now the next free slot is.
-- The row lock serialises every taker, and the clock is read once it is held.
CREATE OR REPLACE FUNCTION take_api_slot(p_key text, p_slot_ms double precision, p_pause_ms double precision)
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
-- As take_api_slot of 0014 (which stays, for workers of older releases), and:
-- p_pause_ms > 0 also records the pause with p_asked_ms (>= p_pause_ms), unless one in force lasts longer.
-- p_slot_ms > 0 while a pause is in force takes a slot only with p_through_pause: without it, nothing is
-- taken and the pause is answered, so a request that fails instead of waiting costs no slot.
-- Returns the wait (for a read: how far ahead the next free slot is), how much longer the pause in force
-- lasts (0: none) and what the API asked for it.
CREATE OR REPLACE FUNCTION take_api_slot(p_key text, p_slot_ms double precision, p_pause_ms double precision, p_asked_ms double precision,
  p_through_pause boolean)
RETURNS TABLE (wait_ms double precision, pause_ms double precision, asked_ms double precision) LANGUAGE plpgsql AS $$
DECLARE
  v_now double precision;
  v_row api_rate_timeline%ROWTYPE;
  v_paused double precision;
  v_asked double precision;
BEGIN
  -- NaN or infinity would stop the timeline for good, a negative width move it back. (NaN sorts above
  -- every number in Postgres, so the asked wait is checked against it by name.)
  IF NOT (p_slot_ms >= 0 AND p_slot_ms < 'infinity' AND p_pause_ms >= 0 AND p_pause_ms < 'infinity'
      AND p_asked_ms >= p_pause_ms AND p_asked_ms <> 'NaN') THEN
    RAISE EXCEPTION 'take_api_slot: slot % ms and pause % ms must be finite and not negative, and asked % ms not less than the pause',
      p_slot_ms, p_pause_ms, p_asked_ms;
  END IF;
  IF p_slot_ms = 0 AND p_pause_ms = 0 THEN
    SELECT * INTO v_row FROM api_rate_timeline WHERE key = p_key;
    v_now := extract(epoch FROM clock_timestamp()) * 1000;
    v_paused := greatest(coalesce(v_row.paused_until_ms - v_now, 0), 0);
    RETURN QUERY SELECT greatest(coalesce(v_row.next_free_ms - v_now, 0), 0), v_paused,
      CASE WHEN v_paused > 0 THEN v_row.pause_asked_ms ELSE 0 END;
    RETURN;
  END IF;
  INSERT INTO api_rate_timeline (key, next_free_ms) VALUES (p_key, 0) ON CONFLICT (key) DO NOTHING;
  SELECT * INTO v_row FROM api_rate_timeline WHERE key = p_key FOR UPDATE;
  v_now := extract(epoch FROM clock_timestamp()) * 1000;
  v_paused := greatest(coalesce(v_row.paused_until_ms - v_now, 0), 0);
  v_asked := CASE WHEN v_paused > 0 THEN v_row.pause_asked_ms ELSE 0 END;
  IF p_pause_ms > 0 THEN
    UPDATE api_rate_timeline SET next_free_ms = greatest(v_row.next_free_ms, v_now + p_pause_ms) WHERE key = p_key;
    IF p_pause_ms >= v_paused THEN
      UPDATE api_rate_timeline SET paused_until_ms = v_now + p_pause_ms, pause_asked_ms = p_asked_ms WHERE key = p_key;
    END IF;
    RETURN QUERY SELECT 0::double precision, 0::double precision, 0::double precision;
    RETURN;
  END IF;
  IF v_paused > 0 AND NOT p_through_pause THEN
    RETURN QUERY SELECT greatest(v_row.next_free_ms - v_now, 0), v_paused, v_asked;
    RETURN;
  END IF;
  UPDATE api_rate_timeline SET next_free_ms = greatest(v_row.next_free_ms, v_now) + p_slot_ms WHERE key = p_key;
  RETURN QUERY SELECT greatest(v_row.next_free_ms, v_now) - v_now, v_paused, v_asked;
END
$$;
