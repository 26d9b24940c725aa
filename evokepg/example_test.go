package evokepg_test

import (
	"context"
	"log"

	"github.com/evoke-go/evoke/evokepg"
	"github.com/evoke-go/evoke/evokestore"
)

// Open a store in its own schema, append an event and read the log.
func ExampleOpen() {
	ctx := context.Background()
	s, err := evokepg.Open(ctx, "postgres://evoke@db.internal:5432/evoke", &evokepg.Options{Schema: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	tx, err := s.Begin(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := tx.AppendEvents(ctx, []evokestore.NewEvent{{ID: "e1", StreamID: "order-1", StreamVersion: 1, Type: "OrderPlaced", Data: []byte(`{}`)}}); err != nil {
		_ = tx.Rollback()
		log.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		log.Fatal(err)
	}
	evs, err := s.ReadLog(ctx, evokestore.LogQuery{})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%d events", len(evs))
}
