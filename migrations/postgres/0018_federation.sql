-- Federation (a service's replicas on other clusters). On the delegating side,
-- `delegated_to` names the member a waiting job was handed to (written before the hand-off:
-- set on a pending job it means that member may already hold it, so it is asked again and no
-- other) and `delegated_url` where its run is seen; `delegate_after` restarts the wait after
-- every member refused; `offer_tries` counts the times a member did not answer whether it has
-- the job. On the accepting side, `delegated_from` is the cluster it came from.
ALTER TABLE jobs ADD COLUMN delegated_to TEXT;
ALTER TABLE jobs ADD COLUMN delegated_url TEXT;
ALTER TABLE jobs ADD COLUMN delegated_from TEXT;
ALTER TABLE jobs ADD COLUMN delegate_after BIGINT;
ALTER TABLE jobs ADD COLUMN offer_tries BIGINT NOT NULL DEFAULT 0;
