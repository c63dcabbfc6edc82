-- Service definitions. `definition` is the OSCAR service JSON without secret values and
-- without the token, so nothing that renders it can leak them.
CREATE TABLE services (
    name        TEXT   PRIMARY KEY,
    owner       TEXT   NOT NULL,
    definition  TEXT   NOT NULL,
    token       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

-- Write-only values (environment.secrets): stored apart, read only to run jobs.
CREATE TABLE service_secrets (
    service  TEXT NOT NULL REFERENCES services (name) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (service, key)
);

-- Buckets the platform created or adopted, with their owner. `created_by` names the service
-- whose creation made the bucket (deleting that service removes it again), or is NULL.
CREATE TABLE buckets (
    name        TEXT   PRIMARY KEY,
    owner       TEXT   NOT NULL,
    created_by  TEXT,
    created_at  BIGINT NOT NULL
);
