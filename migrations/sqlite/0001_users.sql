-- People who signed in, keyed by (issuer, subject): the local admin has issuer 'local';
-- OIDC users get their provider's issuer and `sub`.
CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    issuer        TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    display_name  TEXT    NOT NULL,
    email         TEXT,
    created_at    BIGINT  NOT NULL,
    last_login_at BIGINT  NOT NULL,
    UNIQUE (issuer, subject)
);
