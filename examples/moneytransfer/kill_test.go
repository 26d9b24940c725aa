package moneytransfer_test

import (
	"context"
	"encoding/json"
	"fmt"
	"go.uber.org/goleak"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/evoke-go/evoke"
	"github.com/evoke-go/evoke/evokesqlite"
	"github.com/evoke-go/evoke/evokestore"
	mt "github.com/evoke-go/evoke/examples/moneytransfer"
	"github.com/evoke-go/evoke/internal/engine"
)

// The kill test re-executes this test binary as the process that runs the
// transfers; killChildEnv names its SQLite file.
const (
	killChildEnv  = "EVOKE_MT_KILL_CHILD_DB"
	killTransfers = 10
)

func TestMain(m *testing.M) {
	if db := os.Getenv(killChildEnv); db != "" {
		os.Exit(killChild(db))
	}
	goleak.VerifyTestMain(m)
}

func transferID(i int) string { return fmt.Sprintf("t%02d", i) }

func newTransferRuntime(st evokestore.Store) (*evoke.Runtime, error) {
	rt, err := evoke.New(st, &evoke.Config{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PollInterval: 10 * time.Millisecond})
	if err != nil {
		return nil, err
	}
	return rt, registerTransfer(rt, mt.Transfer{})
}

// killChild runs the transfers until every one has ended (or it is killed).
func killChild(db string) int {
	ctx := context.Background()
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	rt, err := newTransferRuntime(st)
	if err == nil {
		err = rt.Start(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer rt.Stop(ctx)
	for {
		done := 0
		for i := range killTransfers {
			insts, err := st.Instances(ctx, mt.Name, []string{transferID(i)})
			if err == nil && len(insts) == 1 && insts[0].Status.Done() {
				done++
			}
		}
		idle, _ := rt.Idle(ctx)
		if done == killTransfers && idle {
			return 0
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The money transfer refunds the source exactly once, also
// when the process is killed (SIGKILL) between the failed credit and the
// refund. Each run is killed the moment a new rejection is recorded.
func TestRefundExactlyOnceAcrossKills(t *testing.T) {
	if testing.Short() {
		t.Skip("kill test skipped in -short mode")
	}
	ctx := context.Background()
	db := filepath.Join(t.TempDir(), "transfers.db")
	st, err := evokesqlite.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	setup, err := newTransferRuntime(st)
	if err != nil {
		t.Fatal(err)
	}
	for i := range killTransfers {
		src, dst := fmt.Sprintf("src%02d", i), fmt.Sprintf("dst%02d", i)
		for _, c := range []evoke.Command{
			evoke.NewCommand(mt.CommandDeposit, mt.AggregateAccount, src, mt.Deposit{Amount: 1000}),
			evoke.NewCommand(mt.CommandFreeze, mt.AggregateAccount, dst, nil),
		} {
			if _, err := setup.Dispatch(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Rejections of the process manager's commands are recorded as
	// CommandRejected events (an inline command's outcome is its events).
	rejected := func() int64 {
		evs, err := st.ReadLog(ctx, evokestore.LogQuery{Types: []string{engine.TypeCommandRejected}, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(evs))
	}
	// One transfer per run: each run is killed the moment its transfer's
	// credit is rejected.
	kills, beforeRefund := 0, 0
	for i := range killTransfers {
		before := rejected()
		src, dst := fmt.Sprintf("src%02d", i), fmt.Sprintf("dst%02d", i)
		if _, err := setup.Append(ctx, "transfer-"+transferID(i), evoke.NoStream,
			evoke.NewEvent(mt.EventTransferInitiated, mt.TransferInitiated{TransferID: transferID(i), SourceID: src, DestID: dst, Amount: 400})); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), killChildEnv+"="+db)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		func() {
			deadline := time.Now().Add(time.Minute)
			for {
				select {
				case err := <-exited:
					t.Fatalf("the child ended (%v) before a rejection", err)
				default:
				}
				if time.Now().After(deadline) {
					_ = cmd.Process.Kill()
					t.Fatal("no rejection recorded within a minute")
				}
				if rejected() > before {
					return // between the failed credit and its refund
				}
				time.Sleep(time.Millisecond)
			}
		}()
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-exited
		kills++
		if insts, _ := st.Instances(ctx, mt.Name, []string{transferID(i)}); len(insts) == 1 && insts[0].Phase != mt.StatusRefunded {
			beforeRefund++
		}
	}
	t.Logf("killed the child %d times right after a rejection, %d of them before the refund", kills, beforeRefund)
	if beforeRefund == 0 {
		t.Log("no kill landed between the failure and the refund this time")
	}
	final := exec.Command(os.Args[0], "-test.run=^$")
	final.Env = append(os.Environ(), killChildEnv+"="+db)
	final.Stderr = os.Stderr
	if err := final.Run(); err != nil {
		t.Fatalf("final run: %v", err)
	}

	for i := range killTransfers {
		id, src := transferID(i), fmt.Sprintf("src%02d", i)
		insts, err := st.Instances(ctx, mt.Name, []string{id})
		if err != nil || len(insts) != 1 || insts[0].Phase != mt.StatusRefunded {
			t.Fatalf("transfer %s: %+v %v, want refunded", id, insts, err)
		}
		// Exactly one refund command was issued over the instance's life.
		hist, err := st.History(ctx, mt.Name, id)
		if err != nil {
			t.Fatal(err)
		}
		var refunds []string
		for _, h := range hist {
			var cmds []struct {
				ID          string `json:"id"`
				Type        string `json:"type"`
				AggregateID string `json:"aggregate_id"`
			}
			if len(h.Commands) > 0 {
				if err := json.Unmarshal(h.Commands, &cmds); err != nil {
					t.Fatal(err)
				}
			}
			for _, c := range cmds {
				if c.Type == mt.CommandCredit && c.AggregateID == src {
					refunds = append(refunds, c.ID)
				}
			}
		}
		if len(refunds) != 1 {
			t.Fatalf("transfer %s issued %d refunds: %v", id, len(refunds), refunds)
		}
		outs, err := engine.Outcomes(ctx, st, []evokestore.OutboxCommand{{ID: refunds[0]}})
		if o := outs[refunds[0]]; err != nil || o.Status != evokestore.OutcomeAccepted {
			t.Fatalf("transfer %s refund outcome: %+v %v", id, outs, err)
		}
		evs, err := st.ReadStream(ctx, evoke.StreamID(mt.AggregateAccount, src), 0)
		if err != nil {
			t.Fatal(err)
		}
		var balance int64
		n := 0
		for _, e := range evs {
			var d struct {
				Amount int64 `json:"amount"`
			}
			_ = json.Unmarshal(e.Data, &d)
			switch e.Type {
			case mt.EventDeposited, mt.EventSourceRefunded:
				balance += d.Amount
				if e.Type == mt.EventSourceRefunded {
					n++
				}
			case mt.EventSourceDebited:
				balance -= d.Amount
			}
		}
		if n != 1 || balance != 1000 {
			t.Errorf("transfer %s: %d refunds in the source's stream, balance %d; want 1 and 1000", id, n, balance)
		}
	}
	if n := rejected(); n != killTransfers {
		t.Errorf("%d rejected commands, want exactly the %d credits to frozen accounts", n, killTransfers)
	}
}
