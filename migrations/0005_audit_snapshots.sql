CREATE TABLE "audit_snapshot_items" (
	"snapshot_id" bigint NOT NULL,
	"project_id" integer NOT NULL,
	"region_id" integer NOT NULL,
	"image_id" text NOT NULL,
	"version_id" bigint NOT NULL,
	CONSTRAINT "audit_snapshot_items_snapshot_id_project_id_region_id_image_id_pk" PRIMARY KEY("snapshot_id","project_id","region_id","image_id")
);
--> statement-breakpoint
CREATE TABLE "audit_snapshots" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"trigger" text NOT NULL,
	"taken_at" timestamp with time zone NOT NULL,
	"image_count" integer NOT NULL,
	"digest" text NOT NULL,
	CONSTRAINT "audit_snapshots_trigger_unique" UNIQUE("trigger")
);
--> statement-breakpoint
ALTER TABLE "audit_snapshot_items" ADD CONSTRAINT "audit_snapshot_items_snapshot_id_audit_snapshots_id_fk" FOREIGN KEY ("snapshot_id") REFERENCES "public"."audit_snapshots"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "audit_snapshot_items" ADD CONSTRAINT "audit_snapshot_items_version_id_image_versions_id_fk" FOREIGN KEY ("version_id") REFERENCES "public"."image_versions"("id") ON DELETE no action ON UPDATE no action;