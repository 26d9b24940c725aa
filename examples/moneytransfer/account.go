package moneytransfer

import (
	"errors"
	"fmt"
	"maps"

	"github.com/evoke-go/evoke"
)

// Rejection errors of Account.
var (
	// ErrAmountNotPositive rejects an amount of zero or less.
	ErrAmountNotPositive = errors.New("amount must be positive")
	// ErrFrozen rejects a deposit, debit or credit on a frozen account.
	ErrFrozen = errors.New("account frozen")
	// ErrInsufficientFunds rejects a debit above the balance.
	ErrInsufficientFunds = errors.New("insufficient funds")
	// ErrCreditLimit rejects a credit above Account.CreditLimit.
	ErrCreditLimit = errors.New("credit above limit")
	// ErrDuplicate rejects a second debit, credit or refund for one
	// transfer.
	ErrDuplicate = errors.New("transfer already applied")
	// ErrAlreadyFrozen rejects a second freeze.
	ErrAlreadyFrozen = errors.New("already frozen")
)

// AccountState is the state of one account.
type AccountState struct {
	// Balance is in cents.
	Balance int64 `json:"balance"`
	Frozen  bool  `json:"frozen"`
	// Applied holds "debit:ID", "credit:ID" and "refund:ID" for each
	// transfer ID the account took part in.
	Applied map[string]bool `json:"applied,omitempty"`
}

// Account is the "account" aggregate. CreditLimit, when positive, is the
// largest amount one credit may bring; it does not apply to refunds.
//
//	deposit {amount}                        -> Deposited
//	debit   {amount, transfer_id?}          -> SourceDebited, or AccountDebited without a transfer
//	credit  {amount, transfer_id?, reason?} -> DestinationCredited, SourceRefunded with a reason, or AccountCredited without a transfer
//	freeze  {}                              -> AccountFrozen
//
// Deposits, debits and credits are rejected on a frozen account (freeze the
// destination to make a transfer's credit fail), amounts must be positive,
// a debit cannot overdraw, and a transfer's debit, credit or refund is
// accepted once per account.
type Account struct {
	CreditLimit int64
}

var _ evoke.Aggregate[AccountState] = Account{}

// Execute decides on deposit, debit, credit and freeze.
func (a Account) Execute(s AccountState, cmd evoke.Command) ([]evoke.Event, error) {
	id := cmd.AggregateID
	if cmd.Type == CommandFreeze {
		if s.Frozen {
			return nil, ErrAlreadyFrozen
		}
		return []evoke.Event{evoke.NewEvent(EventAccountFrozen, AccountFrozen{AccountID: id})}, nil
	}
	if cmd.Type != CommandDeposit && cmd.Type != CommandDebit && cmd.Type != CommandCredit {
		return nil, fmt.Errorf("%s: unknown command %q", AggregateAccount, cmd.Type)
	}
	var p Credit // a superset of Deposit and Debit
	if err := cmd.Decode(&p); err != nil {
		return nil, err
	}
	if p.Amount <= 0 {
		return nil, ErrAmountNotPositive
	}
	if s.Frozen {
		return nil, ErrFrozen
	}
	switch cmd.Type {
	case CommandDeposit:
		return []evoke.Event{evoke.NewEvent(EventDeposited, Deposited{AccountID: id, Amount: p.Amount})}, nil
	case CommandDebit:
		if p.TransferID != "" && s.Applied["debit:"+p.TransferID] {
			return nil, ErrDuplicate
		}
		if p.Amount > s.Balance {
			return nil, fmt.Errorf("%w: balance %d, debit %d", ErrInsufficientFunds, s.Balance, p.Amount)
		}
		typ := EventAccountDebited
		if p.TransferID != "" {
			typ = EventSourceDebited
		}
		return []evoke.Event{evoke.NewEvent(typ, Debited{AccountID: id, Amount: p.Amount, TransferID: p.TransferID})}, nil
	}
	// credit
	typ, key := EventAccountCredited, ""
	switch {
	case p.TransferID != "" && p.Reason != "":
		typ, key = EventSourceRefunded, "refund:"+p.TransferID
	case p.TransferID != "":
		typ, key = EventDestinationCredited, "credit:"+p.TransferID
	}
	if key != "" && s.Applied[key] {
		return nil, ErrDuplicate
	}
	if a.CreditLimit > 0 && p.Reason == "" && p.Amount > a.CreditLimit {
		return nil, fmt.Errorf("%w: limit %d, credit %d", ErrCreditLimit, a.CreditLimit, p.Amount)
	}
	return []evoke.Event{evoke.NewEvent(typ, Credited{AccountID: id, Amount: p.Amount, TransferID: p.TransferID, Reason: p.Reason})}, nil
}

// Apply evolves the account from its events.
func (Account) Apply(s AccountState, e evoke.Event) AccountState {
	switch e.Type {
	case EventAccountFrozen:
		s.Frozen = true
	case EventDeposited:
		if d, err := evoke.Decode[Deposited](e); err == nil {
			s.Balance += d.Amount
		}
	case EventSourceDebited, EventAccountDebited:
		if d, err := evoke.Decode[Debited](e); err == nil {
			s.Balance -= d.Amount
			s = s.mark("debit", d.TransferID)
		}
	case EventDestinationCredited, EventSourceRefunded, EventAccountCredited:
		if d, err := evoke.Decode[Credited](e); err == nil {
			s.Balance += d.Amount
			kind := "credit"
			if e.Type == EventSourceRefunded {
				kind = "refund"
			}
			s = s.mark(kind, d.TransferID)
		}
	}
	return s
}

// mark records kind:transferID in a copy of s.Applied, leaving the map of
// earlier states untouched.
func (s AccountState) mark(kind, transferID string) AccountState {
	if transferID == "" {
		return s
	}
	applied := maps.Clone(s.Applied)
	if applied == nil {
		applied = map[string]bool{}
	}
	applied[kind+":"+transferID] = true
	s.Applied = applied
	return s
}
