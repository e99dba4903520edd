-- The SQS queue an organization's own Organizations events arrive on (R16), as the projector
-- keeps it from EventsQueueChanged, and which kind of account its org role is in (R17); and
-- how the poller of an organization's queue last fared, which only the poller writes (shown
-- while `queue_url` is the organization's queue).
ALTER TABLE organizations ADD COLUMN events_queue_url TEXT;
ALTER TABLE organizations ADD COLUMN org_role_account TEXT NOT NULL DEFAULT 'management';
CREATE TABLE queue_polls (
    organization_id TEXT PRIMARY KEY,
    queue_url       TEXT NOT NULL,
    polled_at       TEXT NOT NULL,
    error           TEXT
);
