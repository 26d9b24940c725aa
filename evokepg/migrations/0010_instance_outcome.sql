-- 0010: how a done instance ended (evokestore.InstanceOutcome): completed,
-- compensated, timed_out or cancelled; '' while it runs, or 'compensated'
-- once it stepped a command rejection. Instances that ended before read as
-- completed or cancelled, by their status.
ALTER TABLE instances ADD COLUMN outcome TEXT NOT NULL DEFAULT '';
UPDATE instances SET outcome = status WHERE status IN ('completed', 'cancelled');
