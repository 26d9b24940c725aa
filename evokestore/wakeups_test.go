package evokestore_test

import (
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

func TestWakeupsCoalesceAndCancel(t *testing.T) {
	var w evokestore.Wakeups
	ev, cancelEv := w.Subscribe(evokestore.TopicEvents)
	ob, cancelOb := w.Subscribe(evokestore.TopicOutbox)
	defer cancelOb()
	w.Signal(evokestore.TopicEvents)
	w.Signal(evokestore.TopicEvents) // coalesced, never blocks
	select {
	case <-ev:
	default:
		t.Fatal("subscriber not woken")
	}
	select {
	case <-ev:
		t.Fatal("two wake-ups were not coalesced")
	case <-ob:
		t.Fatal("a subscriber of another topic was woken")
	default:
	}
	cancelEv()
	cancelEv() // safe twice
	w.Signal(evokestore.TopicEvents)
	select {
	case <-ev:
		t.Fatal("a cancelled subscriber was woken")
	default:
	}
}
