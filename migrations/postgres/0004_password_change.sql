-- Set when an admin resets someone's password: the admin knows it, so the
-- person must choose their own at their next sign-in.
ALTER TABLE users ADD COLUMN must_change_password BOOLEAN NOT NULL DEFAULT FALSE;
