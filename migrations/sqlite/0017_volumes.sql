-- Managed volumes (`/system/volumes`, a service's `volume.size`): a directory of the data dir
-- in embedded mode, a PersistentVolumeClaim on Kubernetes. Names are unique per owner, as
-- upstream's are per namespace.
CREATE TABLE volumes (
    owner              TEXT   NOT NULL,
    name               TEXT   NOT NULL,
    size               TEXT   NOT NULL,
    size_bytes         BIGINT NOT NULL,
    creation_mode      TEXT   NOT NULL,
    lifecycle_policy   TEXT   NOT NULL,
    created_by_service TEXT   NOT NULL DEFAULT '',
    created_at         BIGINT NOT NULL,
    PRIMARY KEY (owner, name)
);
