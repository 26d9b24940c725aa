package engine

import "github.com/evoke-go/evoke/evokestore"

// ReplayStep runs one recorded event through pm as the router steps it,
// writing nothing: a $evoke.CommandRejected event goes to Compensate and
// then, as $rejected, to Step; a $evoke.Deadline event goes to Step as
// $timeout or $deadline. A replay of an instance's recorded steps with it
// gives what the current code would have done. id is the instance's ID,
// as Handle reads it from the event.
func ReplayStep(pm ProcessManager, state any, id string, ev *evokestore.Event) (StepResult, error) {
	res, _, err := (&router{pm: pm}).stepOne(state, id, ev)
	return res, err
}
