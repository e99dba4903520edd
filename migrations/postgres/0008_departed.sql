-- The accounts and organizations that left the read tables. With those still in them, they are
-- every account and organization the listing ever held, so that the listing at a past instant
-- replays the histories of the accounts on its page alone, not the whole log.
CREATE TABLE departed_accounts (
    account_id TEXT PRIMARY KEY
);
CREATE TABLE departed_organizations (
    id TEXT PRIMARY KEY
);

-- Filled by the projector's next catch-up, which rebuilds the read tables from the log.
DELETE FROM badges;
DELETE FROM accounts;
DELETE FROM organizations;
UPDATE projection_checkpoint SET position = 0 WHERE name = 'read_model';
