-- 0002: as evokesqlite's 0002 and 0003. The log is read by position ranges
-- (the router bounds each read to a window of positions and filters types
-- while scanning the primary key), so the (type, position) index only cost
-- an index write per event; command outcomes are counted by status only for
-- statistics. Retention purges completed instances and old command outcomes
-- by time; both new indexes grow in time order.
DROP INDEX IF EXISTS events_type_position;
DROP INDEX IF EXISTS command_outcomes_status;
CREATE INDEX instances_completed ON instances (completed_at) WHERE completed_at > 0;
CREATE INDEX command_outcomes_recorded ON command_outcomes (recorded_at);
