package moneytransfer

import "github.com/evoke-go/evoke"

// ByTransferID is evoq's "By Entity ID" strategy, the one Transfer
// uses: the instance is the event's transfer_id.
func ByTransferID(e evoke.Event) evoke.Correlation {
	return evoke.ByField(e, "transfer_id", evoke.Continue)
}

// ByCorrelation is evoq's "By Correlation ID" strategy: the instance is
// the event's metadata correlation ID, which the runtime carries from an
// event to the commands it causes and to their events, so that events
// without a shared entity ID reach one instance.
func ByCorrelation(e evoke.Event) evoke.Correlation {
	return evoke.ByCorrelationID(e, evoke.Continue)
}

// ByAccountPair is evoq's "Composite Key" strategy, {transfer, Src,
// Dst}: the instance is evoke.Key(source_id, dest_id), so that one instance
// serves all transfers between two accounts. (evoq's transfer tag is not
// needed: instance IDs are scoped by process manager already.)
func ByAccountPair(e evoke.Event) evoke.Correlation {
	return evoke.ByFields(e, evoke.Continue, "source_id", "dest_id")
}
