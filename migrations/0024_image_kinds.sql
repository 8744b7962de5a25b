-- Kinds of image (src/images/image-kinds.ts): which kind of image each row is, beside its triple,
-- which stays its identity. Every image stored so far came from /cloud/v1/images or
-- /cloud/v1/bmimages, the ordinary kind; the default fills them in place and stays, for
-- the workers of an earlier release still running during an upgrade: they store only
-- ordinary images and name no kind (this release always names it).
-- A target says the kind it is refreshed as until its image is stored (the targets file's
-- entries and the ordinary lists' images are ordinary: the default stays). A listing_pages
-- row may be any kind's list: the registry checks the endpoint, so the CHECK goes; its `shared`
-- counts the ids another kind's list of the listing had listed (one image, two endpoints).
ALTER TABLE "images" ADD COLUMN "kind" text DEFAULT 'ordinary' NOT NULL;--> statement-breakpoint
ALTER TABLE "targets" ADD COLUMN "kind" text DEFAULT 'ordinary' NOT NULL;--> statement-breakpoint
ALTER TABLE "listing_pages" DROP CONSTRAINT "listing_pages_endpoint_check";--> statement-breakpoint
ALTER TABLE "listing_pages" ADD COLUMN "shared" integer;
