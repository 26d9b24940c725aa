-- 0002: the log is read by position ranges (the router bounds each read to a
-- window of positions and filters types while scanning the primary key), so
-- the (type, position) index only cost a B-tree write per event; likewise
-- command outcomes are counted by status only for statistics.
DROP INDEX IF EXISTS events_type_position;
DROP INDEX IF EXISTS command_outcomes_status;
