-- 0008: the fences fail on the server. A Tx sends COMMIT in the same round
-- trip as the writes it held back (Tx.DeferWrites), so a check made by the
-- client on a statement's result (rows updated, leases counted) would come
-- after the server had committed. The instance version fence and the lease
-- check therefore end in evoke_assert, which raises with an SQLSTATE of its
-- own ('EVK01' fenced, 'EVK02' lease lost) when its condition is false, and
-- PostgreSQL refuses the COMMIT that follows.
CREATE FUNCTION evoke_assert(ok boolean, code text, msg text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
	IF NOT ok THEN
		RAISE EXCEPTION USING ERRCODE = code, MESSAGE = msg;
	END IF;
	RETURN true;
END
$$;
