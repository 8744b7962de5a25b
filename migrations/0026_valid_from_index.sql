-- images_as_of (migrations/objects/03_images_as_of.sql) counts the versions that held a moment from this
-- index alone: those from before it, and when each ended. Built in the migration's transaction, which holds
-- off writes to image_versions while it builds (14 s at 10,000,000 versions on a busy 2-core machine).
CREATE INDEX "image_versions_valid_from_idx" ON "image_versions" USING btree ("valid_from","valid_to");
