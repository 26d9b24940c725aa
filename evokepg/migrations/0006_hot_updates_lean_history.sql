-- 0006: an instance row is updated at every step. With half of each page
-- left free, most updates are heap-only (HOT): the new row version goes on
-- the same page and no index is touched, since a step changes no indexed
-- column until the instance completes. (It applies to pages written from
-- now on.)
ALTER TABLE instances SET (fillfactor = 50);
-- History is read and purged by instance (history_instance); nothing looks
-- a record up by its ID alone, so the primary key index was one B-tree
-- write per record for nothing. IDs still come from the identity column.
ALTER TABLE history DROP CONSTRAINT history_pkey;
