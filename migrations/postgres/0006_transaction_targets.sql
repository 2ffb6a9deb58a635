-- A target named by a transaction of the archived log: restore to just
-- before or just after it. target_time keeps the moment it stands for (a
-- microsecond before its commit, or its commit), which the window's rules
-- and the deadline use.
ALTER TABLE tickets ADD COLUMN target_xid BIGINT;
ALTER TABLE tickets ADD COLUMN target_position TEXT CHECK (target_position IN ('before', 'after'));
