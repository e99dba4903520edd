-- The event log: every aggregate's events, with a global position (seq) in commit order.
CREATE TABLE events (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    aggregate_type TEXT    NOT NULL,
    aggregate_id   TEXT    NOT NULL,
    sequence       INTEGER NOT NULL CHECK (sequence >= 0),
    event_type     TEXT    NOT NULL,
    event_version  TEXT    NOT NULL,
    payload        TEXT    NOT NULL,
    metadata       TEXT    NOT NULL,
    UNIQUE (aggregate_type, aggregate_id, sequence)
);

-- Read tables, built from the log by the projector; rebuildable at any time.
CREATE TABLE organizations (
    id                    TEXT PRIMARY KEY,
    nickname              TEXT NOT NULL,
    management_account_id TEXT NOT NULL,
    credentials           TEXT NOT NULL, -- sealed
    filters               TEXT NOT NULL, -- JSON
    registered_at         TEXT NOT NULL
);

CREATE TABLE accounts (
    account_id      TEXT PRIMARY KEY,
    organization_id TEXT,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    state           TEXT NOT NULL,
    org_path        TEXT NOT NULL, -- JSON list of {id, name}, root first
    tags            TEXT NOT NULL, -- JSON object
    first_seen      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);
CREATE INDEX accounts_by_organization ON accounts (organization_id, account_id);
CREATE INDEX accounts_by_state ON accounts (state, account_id);

-- How far the read tables have applied the log.
CREATE TABLE projection_checkpoint (
    name     TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
INSERT INTO projection_checkpoint (name, position) VALUES ('read_model', 0);

-- The last harvest of each organization: operational status, not part of the audit log.
CREATE TABLE harvest_runs (
    organization_id TEXT PRIMARY KEY,
    started_at      TEXT NOT NULL,
    finished_at     TEXT,
    outcome         TEXT NOT NULL,
    accounts_seen   INTEGER,
    error           TEXT,
    -- when a harvest last completed: every listed account was seen then
    last_completed_at TEXT
);

-- Installation-wide values, such as the sealed external ID.
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- API tokens: only a SHA-256 hash of each is kept.
CREATE TABLE api_tokens (
    name       TEXT PRIMARY KEY,
    role       TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
