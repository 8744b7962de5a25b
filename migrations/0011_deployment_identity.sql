CREATE TABLE "deployment" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "deployment_one_row_idx" ON "deployment" USING btree ((true));
--> statement-breakpoint
-- The identity is made once, here; every process reads it at start.
INSERT INTO "deployment" DEFAULT VALUES;
