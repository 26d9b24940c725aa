-- 0005: before the runtime executes a step's commands in the step's own
-- transaction, it asks whether those instances still have commands queued
-- (those go first, to keep commands in order per instance).
CREATE INDEX outbox_instance ON outbox (process_manager, instance_id, seq);
