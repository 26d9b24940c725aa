package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/evoke-go/evoke/evokeui"
)

// runServe serves the inspection UI for a store until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[--store URL] [--addr HOST:PORT] [--token T | --read-only]", stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:7070", "address to listen on (localhost by default: the UI shows instance states)")
	token := fs.String("token", "", "token that allows retry, skip and cancel (default: a random one, printed)")
	readOnly := fs.Bool("read-only", false, "no actions at all")
	if err := parse(fs, args); err != nil {
		return err
	}
	st, err := OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	tok := *token
	if *readOnly {
		tok = ""
	} else if tok == "" {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		tok = hex.EncodeToString(b)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: evokeui.Handler(st, evokeui.Options{Token: tok}), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	if tok != "" {
		fmt.Fprintf(stdout, "evoke serve: %s (as operator: %s?token=%s)\n", url, url, tok)
	} else {
		fmt.Fprintf(stdout, "evoke serve: %s (read-only)\n", url)
	}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
