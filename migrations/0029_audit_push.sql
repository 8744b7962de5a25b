CREATE TABLE "audit_push" (
	"account" text NOT NULL,
	"kind" text NOT NULL,
	"target" text,
	"subscribed" boolean DEFAULT false NOT NULL,
	"subscription_problem" text,
	"checked_at" timestamp with time zone,
	"last_push_at" timestamp with time zone,
	"pushes_received" bigint DEFAULT 0 NOT NULL,
	"pushes_refused" bigint DEFAULT 0 NOT NULL,
	"broker_problem" text,
	"broker_since" timestamp with time zone,
	CONSTRAINT "audit_push_account_kind_pk" PRIMARY KEY("account","kind")
);
--> statement-breakpoint
ALTER TABLE "accounts" ADD COLUMN "audit_push_amqp" jsonb;--> statement-breakpoint
ALTER TABLE "audit_log_cursors" ADD COLUMN "wake_requested_at" timestamp with time zone;