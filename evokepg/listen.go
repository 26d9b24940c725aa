package evokepg

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/evoke-go/evoke/evokestore/backend"
)

// Reconnection backoff of the listener.
const (
	minListenBackoff = 100 * time.Millisecond
	maxListenBackoff = 10 * time.Second
)

// connectListener opens the listener's dedicated connection and LISTENs on
// the schema's channel.
func (s *Store) connectListener(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, s.listenCC)
	if err != nil {
		return nil, fmt.Errorf("listen: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, `LISTEN `+quoteIdent(s.channel)); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("listen: %w", err)
	}
	return conn, nil
}

// closeConn closes a connection and waits for pgx's asynchronous clean-up,
// so that no goroutine outlives the Store.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = conn.Close(ctx)
	select {
	case <-conn.PgConn().CleanupDone():
	case <-ctx.Done():
	}
}

// listen receives notifications on conn until ctx ends, fanning them out to
// local subscribers. If the connection fails it reconnects with exponential
// backoff and then wakes every subscriber, since notifications sent while it
// was down are lost.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn) {
	defer close(s.listenDone)
	defer func() {
		if conn != nil {
			closeConn(conn)
		}
	}()
	backoff := minListenBackoff
	timer := time.NewTimer(0)
	<-timer.C
	defer timer.Stop()
	for {
		if conn == nil {
			timer.Reset(backoff)
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			c, err := s.connectListener(ctx)
			if err != nil {
				backoff = min(2*backoff, maxListenBackoff)
				continue
			}
			conn, backoff = c, minListenBackoff
			s.wakeups.SignalSet(backend.SetAll)
		}
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			closeConn(conn)
			conn = nil
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if n.Channel != s.channel || s.ownPID(n.PID) {
			continue
		}
		s.wakeups.SignalSet(backend.TopicSetOf(n.Payload))
	}
}

// ownPID reports whether pid is the backend of one of the pool's
// connections: the Tx that notified from it has signalled local subscribers
// already.
func (s *Store) ownPID(pid uint32) bool {
	s.pidMu.RLock()
	_, ok := s.pids[pid]
	s.pidMu.RUnlock()
	return ok
}
