-- Each user's access key to the embedded store. The secret is not stored: it is derived from
-- the store's root secret and the access key (`server::store_keys`), so a copy of the
-- database gives no access to the store.
CREATE TABLE store_keys (
    access_key  TEXT   PRIMARY KEY,
    owner       TEXT   NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL
);
