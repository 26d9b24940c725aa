-- 0004: a lease is valid while its node's heartbeat (nodes.expires_at) is,
-- so renewing never touches the lease rows that writers lock FOR SHARE; the
-- leases' own expiry column is unused.
ALTER TABLE leases DROP COLUMN expires_at;
