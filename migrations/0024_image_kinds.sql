-- Kinds of image (src/image-kinds.ts): which kind of image each row is, beside its triple,
-- which stays its identity. Every image stored so far came from /cloud/v1/images or
-- /cloud/v1/bmimages, the ordinary kind; the default fills them in place and is then
-- dropped, so a write that does not say the kind fails rather than files it as ordinary.
ALTER TABLE "images" ADD COLUMN "kind" text DEFAULT 'ordinary' NOT NULL;--> statement-breakpoint
ALTER TABLE "images" ALTER COLUMN "kind" DROP DEFAULT;
