package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Card is a calculation's live message in Telegram: the bot's answer to the
// input file, edited in place as the calculation goes on.
type Card struct {
	CalcID    uint64 `json:"calc_id"`
	ChatID    int64  `json:"chat_id"`
	MessageID int    `json:"message_id,omitempty"` // 0: not sent yet
	// Hash identifies the text and keyboard the message shows (the last edit
	// Telegram applied, or the text it was sent with); an edit is made only
	// when the card renders to a different hash.
	Hash string `json:"hash,omitempty"`
	// Gone: the user deleted the message (or Telegram no longer lets the bot
	// edit it); it is not edited again until /jobs N sends a new one.
	Gone bool `json:"gone,omitempty"`
	// Confirm is the action whose confirmation the card asks for ("cancel",
	// "again"; "" none): its keyboard is Yes / No until one is pressed.
	Confirm string `json:"confirm,omitempty"`
	// Reruns counts the new runs made from the card's Run again: the
	// generation its Yes button carries, so that a repeat of one press makes
	// one calculation and a new press another (scheduler.RunAgainRequest.Press).
	Reruns int `json:"reruns,omitempty"`
	// Live: the card may still change (the calculation is not at its end, or
	// its end is not shown yet); the cards_live index lists these.
	Live bool `json:"live,omitempty"`
}

// addCards is the migration step that adds the cards: their buckets, and
// calcs_active rebuilt in format 3 (the job's reason and node).
func addCards(tx *bolt.Tx) error {
	for _, name := range [][]byte{bCards, bCardsLive} {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	return buildActiveIndex(tx)
}

// Card returns the card of calculation calcID (ErrNotFound: none).
func (s *Store) Card(calcID uint64) (Card, error) {
	var c Card
	err := s.view(func(t *Tx) error {
		ok, err := getJSON(t.bucket(bCards), u64(calcID), &c)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		return nil
	})
	if err != nil {
		return Card{}, fmt.Errorf("card of calc %d: %w", calcID, err)
	}
	return c, nil
}

// UpdateCard changes the card of calculation calcID in one transaction
// (mutate gets a zero Card with CalcID set when there is none yet) and keeps
// cards_live in step with Card.Live. An error from mutate is returned as is
// and changes nothing.
func (s *Store) UpdateCard(calcID uint64, mutate func(*Card) error) (Card, error) {
	var out Card
	err := s.update(func(t *Tx) error {
		b := t.bucket(bCards)
		c := Card{CalcID: calcID}
		if _, err := getJSON(b, u64(calcID), &c); err != nil {
			return fmt.Errorf("card of calc %d: %w", calcID, err)
		}
		if err := mutate(&c); err != nil {
			return err
		}
		c.CalcID = calcID
		if err := putJSON(b, u64(calcID), c); err != nil {
			return fmt.Errorf("card of calc %d: %w", calcID, err)
		}
		live := t.bucket(bCardsLive)
		var err error
		if c.Live {
			err = live.Put(u64(calcID), nil)
		} else {
			err = live.Delete(u64(calcID))
		}
		if err != nil {
			return fmt.Errorf("card of calc %d: %w", calcID, err)
		}
		out = c
		return nil
	})
	return out, err
}

// LiveCards returns the cards that may still change, by calc id.
func (s *Store) LiveCards() ([]Card, error) {
	var out []Card
	err := s.view(func(t *Tx) error {
		cards := t.bucket(bCards)
		return t.bucket(bCardsLive).ForEach(func(k, _ []byte) error {
			var c Card
			ok, err := getJSON(cards, k, &c)
			if err != nil {
				return fmt.Errorf("card of calc %d: %w", getU64(k), err)
			}
			if ok {
				out = append(out, c)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read live cards: %w", err)
	}
	return out, nil
}
