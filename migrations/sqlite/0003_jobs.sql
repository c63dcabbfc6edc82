-- Jobs are the durable queue: a row is written before an event is acknowledged, claimed with a
-- lease by one dispatcher, and kept (with its log) as the job history.
CREATE TABLE jobs (
    name         TEXT    PRIMARY KEY,
    service      TEXT    NOT NULL,
    owner        TEXT    NOT NULL,
    trigger      TEXT    NOT NULL,
    event        TEXT    NOT NULL,
    input        TEXT,
    state        TEXT    NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_after    INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    created_at   INTEGER NOT NULL,
    started_at   INTEGER,
    finished_at  INTEGER,
    exit_code    INTEGER,
    reason       TEXT,
    outputs      TEXT    NOT NULL DEFAULT '[]',
    log_size     INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_ready ON jobs (state, run_after);
CREATE INDEX jobs_by_service ON jobs (service, created_at);

-- One row per object version a service has seen, kept after its job is deleted so a repeated
-- notification or the reconciler never starts a second job for it.
CREATE TABLE job_inputs (
    service  TEXT    NOT NULL,
    object   TEXT    NOT NULL,
    job      TEXT    NOT NULL,
    seen_at  INTEGER NOT NULL,
    PRIMARY KEY (service, object)
);
CREATE INDEX job_inputs_seen ON job_inputs (seen_at);

-- Job logs in the order written; they outlive the process that produced them.
CREATE TABLE job_logs (
    job    TEXT    NOT NULL REFERENCES jobs (name) ON DELETE CASCADE,
    seq    INTEGER NOT NULL,
    chunk  TEXT    NOT NULL,
    PRIMARY KEY (job, seq)
);
