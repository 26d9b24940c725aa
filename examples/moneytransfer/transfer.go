// Package moneytransfer mirrors evoq's "Compensation (Rollback)"
// section (money_transfer_pm): a transfer debits its source account, then
// credits its destination; when the credit is rejected, Compensate refunds
// the source. It also shows evoq's three "Correlation Strategies" (see
// ByTransferID, ByCorrelation and ByAccountPair).
//
// The Account aggregate emits the events the Transfer process manager
// correlates by transfer_id:
//
//	deposit                       -> Deposited
//	debit with a transfer_id      -> SourceDebited       (else AccountDebited)
//	credit with a transfer_id     -> DestinationCredited (else AccountCredited)
//	credit with a transfer_id and
//	a reason (a refund)           -> SourceRefunded
//	freeze                        -> AccountFrozen
//
// A credit to a frozen account, or above the account's credit limit, is
// rejected; the runtime passes the rejection to Transfer.Compensate, which
// returns the refund: a credit to the source account with reason
// "transfer_failed". Its SourceRefunded event, not Compensate, marks the
// transfer refunded. DestinationCreditFailed is kept from evoq's example for
// systems that report a failed credit as an event; Account never emits it.
package moneytransfer

import (
	"github.com/evoke-go/evoke"
)

// Name is the process manager's name.
const Name = "money_transfer"

// AggregateAccount is the aggregate type of Account; its ID is the account
// ID.
const AggregateAccount = "account"

// Event types.
const (
	// EventTransferInitiated starts a transfer; its data is
	// TransferInitiated.
	EventTransferInitiated = "TransferInitiated"
	// EventSourceDebited is a debit made for a transfer; its data is
	// Debited.
	EventSourceDebited = "SourceDebited"
	// EventDestinationCredited is a credit made for a transfer; its data
	// is Credited.
	EventDestinationCredited = "DestinationCredited"
	// EventDestinationCreditFailed reports a failed credit; its data is
	// DestinationCreditFailed. Account does not emit it.
	EventDestinationCreditFailed = "DestinationCreditFailed"
	// EventSourceRefunded is a refund of a transfer's debit; its data is
	// Credited, with a reason.
	EventSourceRefunded = "SourceRefunded"
	// EventDeposited is a deposit; its data is Deposited.
	EventDeposited = "Deposited"
	// EventAccountDebited is a debit outside any transfer; its data is
	// Debited.
	EventAccountDebited = "AccountDebited"
	// EventAccountCredited is a credit outside any transfer; its data is
	// Credited.
	EventAccountCredited = "AccountCredited"
	// EventAccountFrozen freezes an account; its data is AccountFrozen.
	EventAccountFrozen = "AccountFrozen"
)

// Command types, all for AggregateAccount.
const (
	// CommandDeposit's payload is Deposit.
	CommandDeposit = "deposit"
	// CommandDebit's payload is Debit.
	CommandDebit = "debit"
	// CommandCredit's payload is Credit.
	CommandCredit = "credit"
	// CommandFreeze has no payload.
	CommandFreeze = "freeze"
)

// ReasonTransferFailed is the reason of the refund Compensate issues.
const ReasonTransferFailed = "transfer_failed"

// Statuses of a transfer, in State.Status.
const (
	// StatusInitiated is set by Apply on TransferInitiated.
	StatusInitiated = "initiated"
	// StatusDebitingSource follows TransferInitiated.
	StatusDebitingSource = "debiting_source"
	// StatusCreditingDest follows SourceDebited.
	StatusCreditingDest = "crediting_dest"
	// StatusCompleted follows DestinationCredited; it is final.
	StatusCompleted = "completed"
	// StatusCompensating follows DestinationCreditFailed.
	StatusCompensating = "compensating"
	// StatusRefunded follows SourceRefunded; it is final.
	StatusRefunded = "refunded"
	// StatusFailed follows a rejected debit (delivered to Handle as
	// evoke.CommandRejectedEvent): no money moved; it is final.
	StatusFailed = "failed"
)

// TransferInitiated is the data of EventTransferInitiated. Amounts are in
// cents.
type TransferInitiated struct {
	TransferID string `json:"transfer_id"`
	SourceID   string `json:"source_id"`
	DestID     string `json:"dest_id"`
	Amount     int64  `json:"amount"`
}

// Debited is the data of EventSourceDebited and EventAccountDebited.
type Debited struct {
	AccountID  string `json:"account_id"`
	Amount     int64  `json:"amount"`
	TransferID string `json:"transfer_id,omitempty"`
}

// Credited is the data of EventDestinationCredited, EventSourceRefunded and
// EventAccountCredited.
type Credited struct {
	AccountID  string `json:"account_id"`
	Amount     int64  `json:"amount"`
	TransferID string `json:"transfer_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// DestinationCreditFailed is the data of EventDestinationCreditFailed.
type DestinationCreditFailed struct {
	TransferID string `json:"transfer_id"`
	Reason     string `json:"reason,omitempty"`
}

// Deposited is the data of EventDeposited.
type Deposited struct {
	AccountID string `json:"account_id"`
	Amount    int64  `json:"amount"`
}

// AccountFrozen is the data of EventAccountFrozen.
type AccountFrozen struct {
	AccountID string `json:"account_id"`
}

// Deposit is the payload of CommandDeposit.
type Deposit struct {
	Amount int64 `json:"amount"`
}

// Debit is the payload of CommandDebit.
type Debit struct {
	Amount     int64  `json:"amount"`
	TransferID string `json:"transfer_id,omitempty"`
}

// Credit is the payload of CommandCredit. A credit with a reason is a
// refund.
type Credit struct {
	Amount     int64  `json:"amount"`
	TransferID string `json:"transfer_id,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// State is the state of one transfer.
type State struct {
	TransferID string `json:"transfer_id"`
	SourceID   string `json:"source_id"`
	DestID     string `json:"dest_id"`
	Amount     int64  `json:"amount"`
	Status     string `json:"status"`
	// RefundReason is the reason SourceRefunded carried.
	RefundReason string `json:"refund_reason,omitempty"`
}

// Transfer is the money transfer process manager.
type Transfer struct{}

var (
	_ evoke.ProcessManager[State] = Transfer{}
	_ evoke.Compensator[State]    = Transfer{}
	_ evoke.Completer[State]      = Transfer{}
	_ evoke.PhaseReporter[State]  = Transfer{}
)

// Name returns "money_transfer".
func (Transfer) Name() string { return Name }

// InterestedIn returns evoq's events plus DestinationCredited and
// SourceRefunded, which end the transfer.
func (Transfer) InterestedIn() []string {
	return []string{
		EventTransferInitiated, EventSourceDebited, EventDestinationCredited,
		EventDestinationCreditFailed, EventSourceRefunded,
	}
}

// Correlate routes every event by its transfer_id data field (ByTransferID).
func (Transfer) Correlate(e evoke.Event) evoke.Correlation { return ByTransferID(e) }

// Apply records the transfer on TransferInitiated and the refund on
// SourceRefunded: the refund Compensate issued is known to the state only
// through its event.
func (Transfer) Apply(s State, e evoke.Event) State {
	switch e.Type {
	case EventTransferInitiated:
		if s.Status != "" {
			return s
		}
		if d, err := evoke.Decode[TransferInitiated](e); err == nil {
			s.TransferID, s.SourceID, s.DestID, s.Amount = d.TransferID, d.SourceID, d.DestID, d.Amount
			s.Status = StatusInitiated
		}
	case EventSourceRefunded:
		if d, err := evoke.Decode[Credited](e); err == nil {
			s.Status, s.RefundReason = StatusRefunded, d.Reason
		}
	}
	return s
}

// Handle drives the transfer as evoq's handle/3 does:
//
//	TransferInitiated       -> debit source,      debiting_source
//	SourceDebited           -> credit destination, crediting_dest
//	DestinationCredited     -> completed
//	DestinationCreditFailed -> compensating
//	rejected credit         -> compensating (Compensate refunds)
//	rejected debit          -> failed
func (Transfer) Handle(s State, e evoke.Event) (State, []evoke.Command, error) {
	switch e.Type {
	case EventTransferInitiated:
		if _, err := evoke.Decode[TransferInitiated](e); err != nil {
			return s, nil, err
		}
		if s.Status != StatusInitiated {
			return s, nil, nil // duplicate: already dispatched
		}
		s.Status = StatusDebitingSource
		return s, []evoke.Command{evoke.NewCommand(CommandDebit, AggregateAccount, s.SourceID,
			Debit{Amount: s.Amount, TransferID: s.TransferID})}, nil
	case EventSourceDebited:
		s.Status = StatusCreditingDest
		return s, []evoke.Command{evoke.NewCommand(CommandCredit, AggregateAccount, s.DestID,
			Credit{Amount: s.Amount, TransferID: s.TransferID})}, nil
	case EventDestinationCredited:
		s.Status = StatusCompleted
	case EventDestinationCreditFailed:
		s.Status = StatusCompensating
	case evoke.CommandRejectedEvent:
		// Delivered after Compensate: a rejected credit is being refunded;
		// a rejected debit took no money, so the transfer failed.
		d, _ := evoke.Rejected(e) // the runtime's own event: it decodes
		switch {
		case d.Command.Type == CommandDebit:
			s.Status = StatusFailed
		case d.Command.Type == CommandCredit && s.Status == StatusCreditingDest:
			s.Status = StatusCompensating
		}
	}
	return s, nil, nil
}

// Compensate refunds the source when the credit to the destination is
// rejected, as evoq's compensate/2 does, and skips every other
// rejection (including a rejected refund, which must not be refunded in
// turn).
func (Transfer) Compensate(s State, failed evoke.FailedCommand) ([]evoke.Command, bool) {
	if failed.Command.Type != CommandCredit || s.SourceID == "" || s.Amount <= 0 {
		return nil, false
	}
	var c Credit
	if err := failed.Command.Decode(&c); err != nil || c.Reason != "" {
		return nil, false
	}
	return []evoke.Command{evoke.NewCommand(CommandCredit, AggregateAccount, s.SourceID, Credit{
		Amount:     s.Amount,
		TransferID: s.TransferID,
		Reason:     ReasonTransferFailed,
	})}, true
}

// Completed reports whether the transfer is completed, refunded or failed.
func (Transfer) Completed(s State) bool {
	return s.Status == StatusCompleted || s.Status == StatusRefunded || s.Status == StatusFailed
}

// Status returns s.Status.
func (Transfer) Phase(s State) string { return s.Status }
