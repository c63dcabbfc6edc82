-- Who may use a bucket besides its owner (OSCAR's visibility); enforced with user identities.
ALTER TABLE buckets ADD COLUMN visibility TEXT NOT NULL DEFAULT 'private';
ALTER TABLE buckets ADD COLUMN allowed_users TEXT NOT NULL DEFAULT '[]';
