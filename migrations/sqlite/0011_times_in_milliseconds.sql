-- Every time column now holds milliseconds since the epoch, as the job columns always did,
-- so one type (`model::Timestamp`) reads them all. These four tables counted seconds.
UPDATE users SET created_at = created_at * 1000, last_login_at = last_login_at * 1000;
UPDATE services SET created_at = created_at * 1000, updated_at = updated_at * 1000;
UPDATE buckets SET created_at = created_at * 1000;
UPDATE store_keys SET created_at = created_at * 1000;
