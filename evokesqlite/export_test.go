package evokesqlite

import "time"

// Checkpoints returns how many WAL checkpoints the store's checkpointer ran.
func (s *Store) Checkpoints() int64 { return s.ckpts.Load() }

// MinCheckpointGap returns the shortest time between two of the
// checkpointer's checkpoints (0 before the second).
func (s *Store) MinCheckpointGap() time.Duration { return time.Duration(s.ckptMinGap.Load()) }

// SetCheckpointing sets the checkpointer's log size threshold and interval
// until the test ends (set them before opening a store).
func SetCheckpointing(cleanup func(func()), bytes int64, every time.Duration) {
	b, e := walCheckpointBytes, walCheckpointEvery
	walCheckpointBytes, walCheckpointEvery = bytes, every
	cleanup(func() { walCheckpointBytes, walCheckpointEvery = b, e })
}
