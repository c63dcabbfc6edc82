-- Who asked a running job to stop ("stopped by …", its reason once it has): the server running
-- it sees the request when it renews its leases, whichever server took the request.
ALTER TABLE jobs ADD COLUMN stop_requested TEXT;
