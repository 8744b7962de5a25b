-- What the web view (src/ui) reads through the reporting role, granted to every reporting role made before
-- it: a role that may read audit_snapshots (a table every release granted it, whose rights no object file
-- drops, as a view dropped and created loses them until the migrator grants them again) may read these
-- too, as one made by this release's `reporting-role` may (src/sql/grantReporting.ts REPORTING_RELATIONS).
-- None of them holds a secret.
-- src/migrate.ts applies this file after the numbered migrations when it changes (or a migration ran),
-- after the views it names exist.
DO $$
DECLARE
  grantee text;
BEGIN
  FOR grantee IN
    SELECT quote_ident(pg_get_userbyid(a.grantee))
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = to_regclass('audit_snapshots') AND a.privilege_type = 'SELECT' AND a.grantee NOT IN (0, c.relowner)
  LOOP
    EXECUTE format('GRANT SELECT ON images, image_tags, image_versions, image_changes, sync_runs, listings, sync_failures, '
      'audit_log_cursors, scopes TO %s', grantee);
  END LOOP;
END
$$;
