-- The reporting functions run with their owner's rights, so a read-only reporting role can call
-- them without any right on the tables behind them.
ALTER FUNCTION images_as_of(timestamptz) SECURITY DEFINER SET search_path = public, pg_temp;
--> statement-breakpoint
ALTER FUNCTION snapshot_diff(bigint, bigint) SECURITY DEFINER SET search_path = public, pg_temp;
