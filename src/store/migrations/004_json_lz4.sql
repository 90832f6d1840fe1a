-- A run's large JSON values (its steps with their data, its result and input) compressed with lz4 instead of
-- pglz where the server has it (PostgreSQL 14 or later built with lz4, as the common builds are): the outcome of
-- a 10-task run, tens of kilobytes, is written in about half the server time, and every progress write of a
-- sequential run rewrites the steps (issue 16). Values already stored keep their compression. A server without
-- lz4 (PGlite, a build without it: 'not supported') or before 14 (no SET COMPRESSION: a syntax error, raised only
-- when EXECUTE runs the text) keeps its default. The test on PostgreSQL checks the columns are lz4.
DO $$
BEGIN
  EXECUTE 'ALTER TABLE workflow_runs ALTER COLUMN steps SET COMPRESSION lz4, '
    || 'ALTER COLUMN result SET COMPRESSION lz4, ALTER COLUMN input SET COMPRESSION lz4';
EXCEPTION WHEN feature_not_supported OR syntax_error THEN
  NULL;
END $$;
