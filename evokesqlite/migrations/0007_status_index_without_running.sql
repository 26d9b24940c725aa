-- 0007: the status index leaves running instances out. Every step of a
-- running instance rewrites its row, and SQLite maintains an index whenever
-- an UPDATE assigns one of its columns, whatever the value: the full index
-- cost a delete and an insert per step. Now an instance enters it once,
-- when it stops running (completed, failing, parked, cancelled,
-- compensating), and the running ones are counted as all the instances of
-- a process manager (instances_pm, which no update touches) less the rest.
DROP INDEX instances_status;
CREATE INDEX instances_status ON instances (status, process_manager, id) WHERE status <> 'running';
CREATE INDEX instances_pm ON instances (process_manager);
