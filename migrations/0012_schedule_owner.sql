CREATE TABLE "schedule_owner" (
	"id" boolean PRIMARY KEY DEFAULT true NOT NULL,
	"config_hash" text NOT NULL,
	"targets_file" text NOT NULL,
	"host" text NOT NULL,
	"pid" integer NOT NULL,
	"command" text NOT NULL,
	"target_count" integer NOT NULL,
	"claimed_at" timestamp with time zone NOT NULL,
	"heartbeat_at" timestamp with time zone,
	CONSTRAINT "schedule_owner_one_row" CHECK ("schedule_owner"."id")
);
