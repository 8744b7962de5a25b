-- The web view's change feed filtered by account or kind (issue 29): the id index keeps each image's
-- account and kind, so the feed tests each change's image as it walks the changes newest first with no
-- read of the image's row (src/sql/uiChanges.ts). drizzle-kit generated a DROP then a CREATE; by hand, the
-- old index is renamed and dropped only after the new one is built, so reads of image_rows go on while it
-- is (CREATE INDEX holds writes; the DROP at the end takes the table's exclusive lock until the commit).
ALTER INDEX "image_rows_image_id_idx" RENAME TO "image_rows_image_id_0031_idx";--> statement-breakpoint
CREATE INDEX "image_rows_image_id_idx" ON "image_rows" USING btree ("image_id","project_id","region_id","account","kind");--> statement-breakpoint
DROP INDEX "image_rows_image_id_0031_idx";
