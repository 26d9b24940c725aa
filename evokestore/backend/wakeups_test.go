package backend_test

import (
	"github.com/evoke-go/evoke/evokestore/backend"
	"testing"

	"github.com/evoke-go/evoke/evokestore"
)

func TestWakeupsCoalesceAndCancel(t *testing.T) {
	var w backend.Wakeups
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
	s := backend.SetEvents | backend.SetDeadlines
	if got := s.Topics(); len(got) != 2 || got[0] != evokestore.TopicEvents || got[1] != evokestore.TopicDeadlines {
		t.Fatalf("Topics() = %v", got)
	}
	if backend.TopicSetOf("outbox") != backend.SetOutbox || backend.TopicSetOf("nope") != 0 {
		t.Fatal("TopicSetOf does not map names to sets")
	}
	var w backend.Wakeups
	ev, cancel := w.Subscribe(evokestore.TopicEvents)
	defer cancel()
	w.SignalSet(backend.SetOutbox)
	select {
	case <-ev:
		t.Fatal("woken by a set without its topic")
	default:
	}
	w.SignalSet(backend.SetAll)
	select {
	case <-ev:
	default:
		t.Fatal("not woken by SetAll")
	}
}
