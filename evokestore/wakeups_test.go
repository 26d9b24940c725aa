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

func TestTopicSet(t *testing.T) {
	s := evokestore.SetEvents | evokestore.SetDeadlines
	if got := s.Topics(); len(got) != 2 || got[0] != evokestore.TopicEvents || got[1] != evokestore.TopicDeadlines {
		t.Fatalf("Topics() = %v", got)
	}
	if evokestore.TopicSetOf("outbox") != evokestore.SetOutbox || evokestore.TopicSetOf("nope") != 0 {
		t.Fatal("TopicSetOf does not map names to sets")
	}
	var w evokestore.Wakeups
	ev, cancel := w.Subscribe(evokestore.TopicEvents)
	defer cancel()
	w.SignalSet(evokestore.SetOutbox)
	select {
	case <-ev:
		t.Fatal("woken by a set without its topic")
	default:
	}
	w.SignalSet(evokestore.SetAll)
	select {
	case <-ev:
	default:
		t.Fatal("not woken by SetAll")
	}
}
