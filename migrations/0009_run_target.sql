ALTER TABLE "sync_runs" ADD COLUMN "target_project_id" integer;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "target_region_id" integer;--> statement-breakpoint
ALTER TABLE "sync_runs" ADD COLUMN "target_image_id" text;