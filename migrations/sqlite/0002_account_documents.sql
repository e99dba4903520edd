-- Each account's tags and badges beside its row, as the API shows them, so that a page of
-- accounts is one query; resource_tags and badges stay the tables that filters search.
ALTER TABLE accounts ADD COLUMN tags TEXT NOT NULL DEFAULT '{}';   -- JSON object
ALTER TABLE accounts ADD COLUMN badges TEXT NOT NULL DEFAULT '[]'; -- JSON list, by key

-- The read tables are rebuilt from the log by the projector's next catch-up.
DELETE FROM badges;
DELETE FROM resource_tags;
DELETE FROM accounts;
DELETE FROM organizations;
UPDATE projection_checkpoint SET position = 0 WHERE name = 'read_model';
