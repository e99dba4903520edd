-- The organization badges (system.cloud_organization, system.cloud_organization_name) are no
-- longer kept in each account's row and in `badges`: they are added as accounts are read, from
-- the account's organization, so a rename changes one row instead of every account's. Tag
-- badges follow the AutoBadgeSwitched events of each account.

-- The read tables are rebuilt from the log by the projector's next catch-up.
DELETE FROM badges;
DELETE FROM accounts;
DELETE FROM organizations;
UPDATE projection_checkpoint SET position = 0 WHERE name = 'read_model';
