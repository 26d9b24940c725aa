package engine

import "errors"

// permanent reports whether err says that retrying the step cannot help
// (its error has a Permanent method that returns true, such as a stored
// state the code cannot load): the instance parks at once instead of being
// retried with backoff.
func permanent(err error) bool {
	var p interface{ Permanent() bool }
	return errors.As(err, &p) && p.Permanent()
}
