package store

import "fmt"

// CalcChange is one calculation's change in a ChangeCalcs batch: a Transition
// to To with Note, or, when To is "", an UpdateCalc. Mutate follows the rules
// of Transition.
type CalcChange struct {
	ID     uint64
	To     State
	Note   string
	Mutate func(*Tx, *Calculation) error
}

// ChangeCalcs makes the changes in one transaction, in order, and returns each
// calculation as recorded (out[i] for changes[i]). One fsync for the lot: the
// scheduler records a poll cycle's answers with it.
//
// It is all or nothing: when one change fails (its Mutate returns an error, the
// calculation is missing, the transition is not allowed, a write fails), the
// transaction rolls back, no change of the batch is recorded, and the error
// is returned, naming the calculation. A caller that wants the others recorded
// anyway makes them again, each with Transition or UpdateCalc.
func (s *Store) ChangeCalcs(changes []CalcChange) ([]Calculation, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	out := make([]Calculation, len(changes))
	err := s.update(func(t *Tx) error {
		for i, ch := range changes {
			var (
				c   Calculation
				err error
			)
			switch {
			case ch.To == "":
				c, err = t.changeCalc(ch.ID, nil, ch.Note, ch.Mutate)
			case !ch.To.Valid():
				err = fmt.Errorf("unknown state %q: %w", ch.To, ErrBadTransition)
			default:
				c, err = t.changeCalc(ch.ID, &ch.To, ch.Note, ch.Mutate)
			}
			if err != nil {
				return fmt.Errorf("change %d of %d (calc %d): %w", i+1, len(changes), ch.ID, err)
			}
			out[i] = c
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
