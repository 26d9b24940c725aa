package backend

import (
	"sync"

	"github.com/evoke-go/evoke/evokestore"
)

// Wakeups is the in-process half of evokestore.Store.Subscribe, for backends to embed:
// subscribers per topic, each with a channel of one coalesced wake-up that
// never blocks the signaller. Its zero value is ready to use.
type Wakeups struct {
	mu   sync.Mutex
	subs map[evokestore.Topic]map[chan struct{}]struct{}
}

// Subscribe implements evokestore.Store.Subscribe. cancel removes the subscription and
// is safe to call more than once; the channel is never closed.
func (w *Wakeups) Subscribe(topic evokestore.Topic) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = make(map[evokestore.Topic]map[chan struct{}]struct{})
	}
	m := w.subs[topic]
	if m == nil {
		m = make(map[chan struct{}]struct{})
		w.subs[topic] = m
	}
	m[ch] = struct{}{}
	w.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			w.mu.Lock()
			delete(w.subs[topic], ch)
			w.mu.Unlock()
		})
	}
}

// Signal wakes every subscriber of topic.
func (w *Wakeups) Signal(topic evokestore.Topic) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[topic] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// TopicSet is a set of topics, in which a backend's transaction collects the
// topics it wrote, to signal them after it commits.
type TopicSet uint8

// evokestore.Topic sets of one topic each, and of all of them.
const (
	SetEvents TopicSet = 1 << iota
	SetOutbox
	SetDeadlines

	SetAll = SetEvents | SetOutbox | SetDeadlines
)

var allTopics = [...]evokestore.Topic{evokestore.TopicEvents, evokestore.TopicOutbox, evokestore.TopicDeadlines}

// Topics returns the topics in s.
func (s TopicSet) Topics() []evokestore.Topic {
	var out []evokestore.Topic
	for i, t := range allTopics {
		if s&(1<<i) != 0 {
			out = append(out, t)
		}
	}
	return out
}

// TopicSetOf returns the set holding the topic named name, empty for an
// unknown name.
func TopicSetOf(name string) TopicSet {
	for i, t := range allTopics {
		if string(t) == name {
			return 1 << i
		}
	}
	return 0
}

// SignalSet wakes every subscriber of every topic in s.
func (w *Wakeups) SignalSet(s TopicSet) {
	for _, t := range s.Topics() {
		w.Signal(t)
	}
}
