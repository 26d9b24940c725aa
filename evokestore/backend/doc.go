// Package backend holds what store backends share and the runtime does not
// use: the in-process half of Store.Subscribe (Wakeups, TopicSet) and the
// loading of embedded, versioned schema migrations. evokesqlite and evokepg
// use it; a backend of another module may too. The contract itself, the
// Store and Tx interfaces and their types, is package evokestore.
package backend
