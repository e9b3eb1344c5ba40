-- The web portal's cookie: an opaque random value bound to one session row (only its
-- SHA-256 digest is kept), so a browser's session ends with the session, by sign-out,
-- "sign out everywhere", a password change or an admin, as an API client's does.
ALTER TABLE sessions ADD COLUMN browser_token_hash text;
CREATE UNIQUE INDEX sessions_browser_token ON sessions (browser_token_hash)
    WHERE browser_token_hash IS NOT NULL;
