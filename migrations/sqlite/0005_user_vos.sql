-- The VOs an OIDC user belonged to at their last sign-in (JSON array), refreshed each login.
ALTER TABLE users ADD COLUMN vos TEXT NOT NULL DEFAULT '[]';
