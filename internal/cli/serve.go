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

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokeui"
	"github.com/evoke-go/evoke/internal/demo"
)

// minTokenLen is the shortest --token serve accepts.
const minTokenLen = 16

// runServe serves the inspection UI for a store until ctx ends.
func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "[--store URL] [--addr HOST:PORT] [--token T | --read-only]", stdout, stderr)
	store := fs.String("store", DefaultStore, "store: a SQLite file or a postgres:// URL")
	addr := fs.String("addr", "127.0.0.1:7070", "address to listen on (localhost by default: the UI shows instance states, over plain HTTP)")
	token := fs.String("token", "", fmt.Sprintf("token that allows retry, skip and cancel, at least %d characters (default: a random one, printed)", minTokenLen))
	readOnly := fs.Bool("read-only", false, "no actions at all (takes no --token)")
	if err := fs.parseNoArgs(args); err != nil {
		return err
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		return usageErrorf("--addr %q: want HOST:PORT, e.g. 127.0.0.1:7070 (%v)", *addr, err)
	}
	tok := *token
	switch {
	case *readOnly && tok != "":
		return usageErrorf("--read-only and --token do not combine: a read-only UI has no actions for a token to allow")
	case tok != "" && len(tok) < minTokenLen:
		return usageErrorf("--token must be at least %d characters (leave it out for a random one)", minTokenLen)
	case !*readOnly && tok == "":
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return err
		}
		tok = hex.EncodeToString(b)
	}
	st, err := OpenStore(ctx, *store, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	replay := func(ctx context.Context, pm string) (evoke.ReplayReport, error) { return demo.Replay(ctx, st, pm, nil) }
	srv := &http.Server{Handler: evokeui.Handler(st, evokeui.Options{Token: tok, Replay: replay}), ReadHeaderTimeout: 10 * time.Second}
	url := "http://" + ln.Addr().String() + "/"
	if ip := ln.Addr().(*net.TCPAddr).IP; !ip.IsLoopback() {
		fmt.Fprintf(stderr, "evoke serve: WARNING: listening on %s, which is not a loopback address: whoever can reach it sees instance states, "+
			"and the UI speaks plain HTTP, so the operator's token crosses the network in clear. "+
			"Serve on 127.0.0.1 and reach it through an SSH tunnel, or behind a TLS-terminating proxy.\n", ln.Addr())
	}
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
