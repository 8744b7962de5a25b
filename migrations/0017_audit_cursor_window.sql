ALTER TABLE "audit_log_cursors" ADD COLUMN "looked_ahead_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "audit_log_cursors" ADD COLUMN "ahead_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "audit_log_cursors" ADD COLUMN "ahead_count" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
-- An earlier release let the cursor run up to an hour ahead of the host's clock (one entry dated 2099 kept it
-- there, and every later entry went unread): such a cursor reads again from a day back, as a first poll does.
-- Entries are kept by id, so those already stored are neither doubled nor acted on again.
UPDATE "audit_log_cursors" SET "from_timestamp" = now() - interval '24 hours', "page_offset" = 0 WHERE "from_timestamp" > now();
