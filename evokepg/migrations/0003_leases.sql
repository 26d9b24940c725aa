-- 0003: several nodes on one database. Instances are spread over
-- partitions; each partition is leased to at most one live node at a time,
-- and every write checks the lease (see leases.go). History records which
-- node wrote them under which lease token.
ALTER TABLE history ADD COLUMN node TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE history ADD COLUMN lease_token BIGINT NOT NULL DEFAULT 0;

CREATE TABLE nodes (
	id         TEXT COLLATE "C" PRIMARY KEY,
	expires_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE leases (
	partition  INTEGER PRIMARY KEY,
	node       TEXT COLLATE "C" NOT NULL DEFAULT '',
	token      BIGINT NOT NULL DEFAULT 0,
	expires_at TIMESTAMPTZ NOT NULL DEFAULT 'epoch'
);
CREATE INDEX outbox_partition ON outbox (partition, seq);
