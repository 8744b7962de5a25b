CREATE TABLE "alert_cursor" (
	"name" text PRIMARY KEY NOT NULL,
	"last_change_id" bigint NOT NULL
);
