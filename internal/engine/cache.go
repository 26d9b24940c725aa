package engine

import "github.com/evoke-go/evoke/evokestore"

// instCache keeps the instances a router committed, as committed, so that
// the batches after need not read them back: a saga's next event usually
// comes a few batches later, and reading its instance was the costliest
// query of a step on PostgreSQL.
//
// It holds only what is true of the store:
//   - entries are put after the batch that wrote them committed, and the
//     whole cache is dropped when a batch fails (its effect is unknown);
//   - an entry is valid under the lease token of its partition at the time
//     it was put: a partition lost (another node may have stepped its
//     instances) and regained has a new token;
//   - only running and compensating instances are kept. What changes an
//     instance from outside the router's batches either moves its version
//     (evokeops.Cancel, the dispatcher's park), so that the router's next
//     write of it is fenced off and the cache dropped, or runs under the
//     router's lock and drops the entry itself (Runtime.Cancel, the
//     operator's retry and skip, which commit through the router). Failing,
//     parked and ended instances are read from the store: operator tools
//     change them without moving their version, and the janitor purges
//     ended ones.
//
// It is bounded by two generations of at most size/2 entries each: when
// the newer fills up, the older is dropped and the newer becomes it.
type instCache struct {
	half     int
	cur, old map[string]cachedInst
}

type cachedInst struct {
	in  evokestore.Instance
	tok int64 // the lease token of its partition when it was put
}

func newInstCache(size int) *instCache {
	if size <= 0 {
		return nil
	}
	return &instCache{half: max(size/2, 1)}
}

// get returns the cached instance id if its partition's lease token is
// still tok.
func (c *instCache) get(id string, ls *leaseSet) (evokestore.Instance, bool) {
	if c == nil {
		return evokestore.Instance{}, false
	}
	e, ok := c.cur[id]
	if !ok {
		e, ok = c.old[id]
	}
	if !ok {
		return evokestore.Instance{}, false
	}
	if tok, owned := ls.tokens[e.in.Partition]; !owned || tok != e.tok {
		return evokestore.Instance{}, false
	}
	return e.in, true
}

// put records in as committed under lease token tok, or forgets it if it
// is not to be kept.
func (c *instCache) put(in *evokestore.Instance, tok int64) {
	if c == nil {
		return
	}
	if in.Status != evokestore.StatusRunning && in.Status != evokestore.StatusCompensating {
		c.drop(in.ID)
		return
	}
	if c.cur == nil || len(c.cur) >= c.half {
		c.old, c.cur = c.cur, make(map[string]cachedInst, c.half)
	}
	delete(c.old, in.ID)
	c.cur[in.ID] = cachedInst{in: *in, tok: tok}
}

// drop forgets one instance.
func (c *instCache) drop(id string) {
	if c == nil {
		return
	}
	delete(c.cur, id)
	delete(c.old, id)
}

// reset forgets everything.
func (c *instCache) reset() {
	if c == nil {
		return
	}
	c.cur, c.old = nil, nil
}
