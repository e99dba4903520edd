-- Tokens expire, are revoked and say when they were last used. A revoked token's row stays,
-- so that its name, which the log's actors carry, is never given to another token.
ALTER TABLE api_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE api_tokens ADD COLUMN revoked_at TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;
