-- The current definition of api_timestamp.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran):
-- edit the definition here, not in a new migration (docs/database.md, "Recipes"). Defined before in
-- migrations 0010, which stay as they were.
-- An API date as the history keeps it (ISO, UTC) into timestamptz: ISO year 0000 is 1 BC and -0001
-- is 2 BC, which Postgres reads only written so (as src/api-date.ts writes them for the columns).
CREATE OR REPLACE FUNCTION api_timestamp(t text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN t LIKE '-%' OR t LIKE '0000-%'
    THEN (lpad((1 - substring(t FROM '^(-?[0-9]+)-')::int)::text, 4, '0')
      || regexp_replace(t, '^-?[0-9]+(-.*)Z$', '\1') || '+00 BC')::timestamptz
    ELSE t::timestamptz END
$$;
