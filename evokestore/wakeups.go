package evokestore

import "sync"

// Wakeups is the in-process half of Store.Subscribe, for backends to embed:
// subscribers per topic, each with a channel of one coalesced wake-up that
// never blocks the signaller. Its zero value is ready to use.
type Wakeups struct {
	mu   sync.Mutex
	subs map[Topic]map[chan struct{}]struct{}
}

// Subscribe implements Store.Subscribe. cancel removes the subscription and
// is safe to call more than once; the channel is never closed.
func (w *Wakeups) Subscribe(topic Topic) (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.subs == nil {
		w.subs = make(map[Topic]map[chan struct{}]struct{})
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
func (w *Wakeups) Signal(topic Topic) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[topic] {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}
