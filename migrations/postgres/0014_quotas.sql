-- Per-user limits the admin sets (`PUT /system/quotas/user/{id}`): NULL follows the default
-- (`platform_settings` 'quota_defaults'), -1 is unlimited.
CREATE TABLE user_quotas (
    user_id       TEXT   PRIMARY KEY,
    jobs          BIGINT,
    cpu_millis    BIGINT,
    memory_bytes  BIGINT,
    buckets       BIGINT,
    storage_bytes BIGINT
);

-- What a running job asked for, set when it is claimed: the quota check adds up its owner's.
ALTER TABLE jobs ADD COLUMN cpu_millis BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN memory_bytes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX jobs_running_by_owner ON jobs (owner, state);
