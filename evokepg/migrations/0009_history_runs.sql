-- 0009: a history row may hold a run of one instance's steps written
-- together (a saga's chained steps, one batch): its columns are the run's
-- first record, and more holds the others, a JSON array of their fields and
-- positions (internal/payload), NULL for a row of one record. A saga's
-- four steps are one row and one index entry instead of four. A record's
-- ID is its row's identity times 64 plus its place in the row, so IDs still
-- increase in the order records were written. The version also keeps a
-- binary from before, which would not read more, off a schema that has it.
ALTER TABLE history ADD COLUMN more BYTEA;
