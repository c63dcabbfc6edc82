-- One row per run of a job (every attempt), written when the run ends and kept when the job
-- is deleted: usage metrics (`/system/metrics`) read it. Resources are what the service asked
-- for when the run started (CPU in millicores, memory in bytes, GPUs); `outcome` is succeeded,
-- failed (the script) or error (the platform could not carry the run out).
CREATE TABLE job_usage (
    job          TEXT   NOT NULL,
    service      TEXT   NOT NULL,
    owner        TEXT   NOT NULL,
    trigger      TEXT   NOT NULL,
    outcome      TEXT   NOT NULL,
    started_at   BIGINT NOT NULL,
    finished_at  BIGINT NOT NULL,
    cpu_millis   BIGINT NOT NULL,
    memory_bytes BIGINT NOT NULL,
    gpus         BIGINT NOT NULL,
    PRIMARY KEY (job, started_at)
);
CREATE INDEX job_usage_by_time ON job_usage (finished_at);

-- Runs that ended before this table existed count with their times; what their services
-- asked for was not recorded.
INSERT INTO job_usage (job, service, owner, trigger, outcome, started_at, finished_at,
                       cpu_millis, memory_bytes, gpus)
SELECT name, service, owner, trigger,
       CASE state WHEN 'dead_lettered' THEN 'error' ELSE state END,
       started_at, finished_at, 0, 0, 0
FROM jobs
WHERE state IN ('succeeded', 'failed', 'dead_lettered')
  AND started_at IS NOT NULL AND finished_at IS NOT NULL;
