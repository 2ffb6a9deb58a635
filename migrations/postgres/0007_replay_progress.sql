-- While the log is replayed, the commit time it has reached: progress is
-- that moment against the target, never going back within a run.
ALTER TABLE restore_jobs ADD COLUMN replayed_to TIMESTAMPTZ;
