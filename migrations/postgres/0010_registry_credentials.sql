-- Credentials users keep for their services' images: `image_pull_secrets` names them when
-- jobs run in their image on this machine (Kubernetes reads its own Secrets instead).
CREATE TABLE registry_credentials (
    owner     TEXT NOT NULL,
    name      TEXT NOT NULL,
    server    TEXT NOT NULL,
    username  TEXT NOT NULL,
    password  TEXT NOT NULL,
    PRIMARY KEY (owner, name)
);
