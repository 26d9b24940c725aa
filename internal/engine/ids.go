package engine

import (
	"strconv"

	"github.com/google/uuid"
)

// idSpace is the UUID namespace of evoke's derived IDs.
var idSpace = uuid.MustParse("6f1c1c2e-0f7b-4c55-9a53-6b1d5e0c9e11")

// DerivedID returns a name-based (SHA-1, version 5) UUID of parts, so that
// the same inputs always give the same ID and different part lists never
// collide by concatenation.
func DerivedID(parts ...string) string {
	n := 0
	for _, p := range parts {
		n += len(p) + 8
	}
	b := make([]byte, 0, n)
	for _, p := range parts {
		b = strconv.AppendInt(b, int64(len(p)), 10)
		b = append(b, ':')
		b = append(b, p...)
	}
	return uuid.NewSHA1(idSpace, b).String()
}

// CommandID returns the deterministic ID of the index-th command that
// process manager pm's instance produced on the event eventID.
func CommandID(pm, instanceID, eventID string, index int) string {
	return DerivedID("cmd", pm, instanceID, eventID, strconv.Itoa(index))
}

// EventID returns the deterministic ID of the index-th event a command
// caused, so that re-executing a command cannot append new events.
func EventID(commandID string, index int) string {
	return DerivedID("evt", commandID, strconv.Itoa(index))
}
