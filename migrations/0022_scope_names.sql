-- What outputs call a scope: its name: in the targets file, or one made from its definition. Filled by the next reconcile.
ALTER TABLE "scopes" ADD COLUMN "name" text;
