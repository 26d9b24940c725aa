-- 0003: retention purges completed instances and old command outcomes by
-- time; both indexes grow in time order, so they are cheap to maintain.
CREATE INDEX instances_completed ON instances (completed_at) WHERE completed_at > 0;
CREATE INDEX command_outcomes_recorded ON command_outcomes (recorded_at);
