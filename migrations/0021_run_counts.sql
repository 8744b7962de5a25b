ALTER TABLE "sync_runs" DROP CONSTRAINT "sync_runs_status_check";--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "created" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "discovered" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "listed" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "marked_left" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "unattempted" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "listings_unfinished" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "error" text;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD CONSTRAINT "sync_runs_status_check" CHECK ("sync_runs"."status" IN ('running', 'finished', 'superseded', 'incomplete'));--> statement-breakpoint
-- What a finished run's listings returned is still in listings; the other new counts start with this version.
UPDATE "sync_runs" r SET "listed" = l.listed
FROM (SELECT run_id, sum(listed)::bigint AS listed FROM listings WHERE listed IS NOT NULL GROUP BY run_id) l
WHERE l.run_id = r.id AND r.finished_at IS NOT NULL;
