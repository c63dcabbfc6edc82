-- Job counts per service and job owner, kept by triggers on `jobs` so the services list reads
-- a row per service instead of aggregating the whole job history on every request.
CREATE TABLE job_activity (
    service  TEXT    NOT NULL,
    owner    TEXT    NOT NULL,
    total    INTEGER NOT NULL DEFAULT 0,
    running  INTEGER NOT NULL DEFAULT 0,
    failed   INTEGER NOT NULL DEFAULT 0,
    last     INTEGER,
    PRIMARY KEY (service, owner)
);

INSERT INTO job_activity (service, owner, total, running, failed, last)
SELECT service, owner, COUNT(*), SUM(state = 'running'),
       SUM(state IN ('failed', 'dead_lettered')), MAX(created_at)
FROM jobs GROUP BY service, owner;

CREATE TRIGGER job_activity_insert AFTER INSERT ON jobs BEGIN
    INSERT OR IGNORE INTO job_activity (service, owner) VALUES (NEW.service, NEW.owner);
    UPDATE job_activity
    SET total = total + 1,
        running = running + (NEW.state = 'running'),
        failed = failed + (NEW.state IN ('failed', 'dead_lettered')),
        last = MAX(COALESCE(last, NEW.created_at), NEW.created_at)
    WHERE service = NEW.service AND owner = NEW.owner;
END;

-- A job's service, owner and creation time never change; only its state does.
CREATE TRIGGER job_activity_state AFTER UPDATE OF state ON jobs
WHEN OLD.state <> NEW.state BEGIN
    UPDATE job_activity
    SET running = running + (NEW.state = 'running') - (OLD.state = 'running'),
        failed = failed + (NEW.state IN ('failed', 'dead_lettered'))
                        - (OLD.state IN ('failed', 'dead_lettered'))
    WHERE service = NEW.service AND owner = NEW.owner;
END;

CREATE TRIGGER job_activity_delete AFTER DELETE ON jobs BEGIN
    UPDATE job_activity
    SET total = total - 1,
        running = running - (OLD.state = 'running'),
        failed = failed - (OLD.state IN ('failed', 'dead_lettered')),
        last = CASE WHEN last = OLD.created_at THEN
                   (SELECT MAX(created_at) FROM jobs
                    WHERE service = OLD.service AND owner = OLD.owner)
               ELSE last END
    WHERE service = OLD.service AND owner = OLD.owner;
    DELETE FROM job_activity WHERE service = OLD.service AND owner = OLD.owner AND total = 0;
END;
