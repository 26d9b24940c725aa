// Package backend holds what store backends share and the runtime does not
// use: the in-process half of Store.Subscribe (Wakeups, TopicSet), the
// loading and applying of embedded, versioned schema migrations, and the
// scanning of the rows both SQL stores read alike (events, instances,
// outbox commands, held events, deadlines and the tally's counts), times in
// Unix nanoseconds.
// evokesqlite and evokepg use it; a backend of another module may too. The
// contract itself, the Store and Tx interfaces and their types, is package
// evokestore.
package backend
