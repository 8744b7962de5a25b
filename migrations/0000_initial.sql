CREATE TABLE "image_changes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"version_id" bigint NOT NULL,
	"change_type" text NOT NULL,
	"field" text,
	"old_value" jsonb,
	"new_value" jsonb,
	"changed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "image_tags" (
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"key" text NOT NULL,
	"value" text NOT NULL,
	"read_only" boolean NOT NULL,
	CONSTRAINT "image_tags_project_id_region_id_image_id_key_pk" PRIMARY KEY("project_id","region_id","image_id","key")
);
--> statement-breakpoint
CREATE TABLE "image_versions" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"valid_from" timestamp with time zone NOT NULL,
	"valid_to" timestamp with time zone,
	"content_hash" text NOT NULL,
	"state" jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "images" (
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"name" text NOT NULL,
	"region" text NOT NULL,
	"status" text NOT NULL,
	"visibility" text NOT NULL,
	"os_distro" text NOT NULL,
	"os_version" text NOT NULL,
	"os_type" text NOT NULL,
	"disk_format" text NOT NULL,
	"min_disk" integer NOT NULL,
	"min_ram" integer NOT NULL,
	"size" bigint,
	"owner_project_id" integer NOT NULL,
	"image_region_id" integer NOT NULL,
	"architecture" text,
	"is_baremetal" boolean,
	"creator_task_id" text,
	"task_id" text,
	"description" text,
	"display_order" integer,
	"gpu_driver" text,
	"gpu_driver_type" text,
	"gpu_driver_version" text,
	"hw_firmware_type" text,
	"hw_machine_type" text,
	"ssh_key" text,
	"currency_code" text,
	"price_per_hour" numeric,
	"price_per_month" numeric,
	"price_status" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"raw" jsonb NOT NULL,
	"content_hash" text NOT NULL,
	"first_seen_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL,
	"last_changed_at" timestamp with time zone NOT NULL,
	"deleted_at" timestamp with time zone,
	CONSTRAINT "images_project_id_region_id_image_id_pk" PRIMARY KEY("project_id","region_id","image_id")
);
--> statement-breakpoint
CREATE TABLE "sync_failures" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"status" integer,
	"error_class" text NOT NULL,
	"message" text NOT NULL,
	"attempts" integer NOT NULL,
	"failed_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sync_runs" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"schedule_key" text,
	"trigger" text NOT NULL,
	"status" text DEFAULT 'running' NOT NULL,
	"started_at" timestamp with time zone NOT NULL,
	"finished_at" timestamp with time zone,
	"planned" integer NOT NULL,
	"unchanged" integer DEFAULT 0 NOT NULL,
	"changed" integer DEFAULT 0 NOT NULL,
	"deleted" integer DEFAULT 0 NOT NULL,
	"failed" integer DEFAULT 0 NOT NULL,
	CONSTRAINT "sync_runs_trigger_unique" UNIQUE("trigger")
);
--> statement-breakpoint
CREATE TABLE "targets" (
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"schedule_key" text NOT NULL,
	"added_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_attempt_at" timestamp with time zone DEFAULT '-infinity' NOT NULL,
	"last_outcome" text,
	"last_error" text,
	"last_status" integer,
	"queued_job" text,
	"queued_at" timestamp with time zone,
	CONSTRAINT "targets_project_id_region_id_image_id_pk" PRIMARY KEY("project_id","region_id","image_id")
);
--> statement-breakpoint
ALTER TABLE "image_changes" ADD CONSTRAINT "image_changes_version_id_image_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."image_versions"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "image_changes_changed_at_idx" ON "image_changes" USING btree ("changed_at");--> statement-breakpoint
CREATE INDEX "image_changes_triple_idx" ON "image_changes" USING btree ("project_id","region_id","image_id","changed_at");--> statement-breakpoint
CREATE INDEX "image_tags_key_value_idx" ON "image_tags" USING btree ("key","value");--> statement-breakpoint
CREATE INDEX "image_versions_triple_valid_idx" ON "image_versions" USING btree ("project_id","region_id","image_id","valid_from");--> statement-breakpoint
CREATE UNIQUE INDEX "image_versions_one_current_idx" ON "image_versions" USING btree ("project_id","region_id","image_id") WHERE "image_versions"."valid_to" IS NULL;--> statement-breakpoint
CREATE INDEX "sync_failures_failed_at_idx" ON "sync_failures" USING btree ("failed_at");--> statement-breakpoint
CREATE INDEX "sync_failures_triple_idx" ON "sync_failures" USING btree ("project_id","region_id","image_id","failed_at");--> statement-breakpoint
CREATE INDEX "sync_runs_open_idx" ON "sync_runs" USING btree ("schedule_key") WHERE "sync_runs"."finished_at" IS NULL;--> statement-breakpoint
CREATE INDEX "sync_runs_started_idx" ON "sync_runs" USING btree ("started_at");--> statement-breakpoint
CREATE INDEX "targets_queued_job_idx" ON "targets" USING btree ("queued_job") WHERE "targets"."queued_job" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "targets_schedule_attempt_idx" ON "targets" USING btree ("schedule_key","last_attempt_at");--> statement-breakpoint
CREATE INDEX "targets_attempt_idx" ON "targets" USING btree ("last_attempt_at");