-- The current definition of api_timestamp: applied by src/migrate.ts after the numbered migrations whenever this
-- file changes (or a migration ran), so edit it here, not in a new migration (docs/database.md, "Changing a view
-- or function"). Historic migrations that defined it before stay as they were: 0010.
-- An API date as the history keeps it (ISO, UTC) into timestamptz: ISO year 0000 is 1 BC and -0001
-- is 2 BC, which Postgres reads only written so (as src/api-date.ts writes them for the columns).
CREATE OR REPLACE FUNCTION api_timestamp(t text) RETURNS timestamptz LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN t LIKE '-%' OR t LIKE '0000-%'
    THEN (lpad((1 - substring(t FROM '^(-?[0-9]+)-')::int)::text, 4, '0')
      || regexp_replace(t, '^-?[0-9]+(-.*)Z$', '\1') || '+00 BC')::timestamptz
    ELSE t::timestamptz END
$$;
