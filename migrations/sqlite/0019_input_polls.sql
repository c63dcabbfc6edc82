-- The last listing of each input folder in another provider (WebDAV, another S3 store) that
-- polling reads: when, how many files it held, and since when and why it fails, so the
-- service page can say what only the server log said. `input` is `provider:path`.
CREATE TABLE input_polls (
    service       TEXT   NOT NULL,
    input         TEXT   NOT NULL,
    polled_at     BIGINT NOT NULL,
    files         BIGINT NOT NULL DEFAULT 0,
    failing_since BIGINT,
    error         TEXT,
    PRIMARY KEY (service, input)
);
