package engine

import (
	"crypto/sha1"
	"encoding/hex"
	"strconv"
)

// SortableID returns a deterministic, name-based UUID (version 8): its first
// 48 bits are key, big-endian, and the rest a SHA-1 of parts, length-prefixed
// so that different part lists never collide by concatenation. IDs derived
// in log order (key = the triggering event's position) are therefore
// inserted in index order, which keeps the store's ID indexes append-mostly
// instead of scattering writes over random pages.
func SortableID(key uint64, parts ...string) string {
	h := sha1.New()
	var buf [20]byte
	for _, p := range parts {
		h.Write(strconv.AppendInt(buf[:0], int64(len(p)), 10))
		h.Write([]byte{':'})
		h.Write([]byte(p))
	}
	sum := h.Sum(buf[:0])
	var u [16]byte
	for i := range 6 {
		u[i] = byte(key >> (8 * (5 - i)))
	}
	copy(u[6:], sum[:10])
	u[6] = (u[6] & 0x0f) | 0x80 // version 8
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// sortKey returns the first 48 bits of a UUID-shaped ID (the key of a
// SortableID, or the millisecond time of a UUIDv7), or 0 for other IDs.
func sortKey(id string) uint64 {
	if len(id) < 13 || id[8] != '-' {
		return 0
	}
	var b [6]byte
	if _, err := hex.Decode(b[:4], []byte(id[0:8])); err != nil {
		return 0
	}
	if _, err := hex.Decode(b[4:], []byte(id[9:13])); err != nil {
		return 0
	}
	var k uint64
	for _, x := range b {
		k = k<<8 | uint64(x)
	}
	return k
}

// CommandID returns the deterministic ID of the index-th command that
// process manager pm's instance produced on the event eventID at log
// position position. Its sort key is the trigger's (triggerKey).
func CommandID(pm, instanceID, eventID string, position int64, index int) string {
	return SortableID(triggerKey(eventID, position), "cmd", pm, instanceID, eventID, strconv.Itoa(index))
}

// triggerKey is the sort key of the commands an event triggers: the key of
// the event's own ID when it is a time- or key-ordered UUID (version 7, or
// version 8 as SortableID makes, as for every event an aggregate appends
// for evoke), and otherwise its log position. It depends on the event
// alone, and not on its position for the events aggregates append, so that
// a step chained before its event has a position (07_chain.go) issues the
// same IDs as when a later batch steps the event.
func triggerKey(eventID string, position int64) uint64 {
	if len(eventID) == 36 && (eventID[14] == '7' || eventID[14] == '8') {
		if k := sortKey(eventID); k != 0 {
			return k
		}
	}
	return uint64(position)
}

// EventID returns the deterministic ID of the index-th event a command
// caused, so that re-executing a command cannot append new events.
func EventID(commandID string, index int) string {
	return SortableID(sortKey(commandID), "evt", commandID, strconv.Itoa(index))
}

// RejectionEventID returns the deterministic ID of the CommandRejected
// event evoke appends when an aggregate rejects the process manager's
// command commandID.
func RejectionEventID(commandID string) string {
	return SortableID(sortKey(commandID), "rejection", commandID)
}

// RejectionStreamID returns the stream of that event.
func RejectionStreamID(commandID string) string { return "$evoke.rejection-" + commandID }
