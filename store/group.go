package store

import (
	"fmt"
	"time"
)

// Group is a Telegram group the bot knows of: one an admin allowed (by adding
// the bot to it, or with /groups add), where /access registers users, or one
// the bot refused (added by someone else: it left), whose updates are ignored.
// Groups listed in the configuration (bot.groups) are allowed without a record.
type Group struct {
	ChatID int64      `json:"chat_id"` // negative, as every group id
	Title  string     `json:"title,omitempty"`
	State  GroupState `json:"state"`
	By     int64      `json:"by,omitempty"`      // Telegram id of who added or removed the bot; 0 for hpcbot itself
	ByName string     `json:"by_name,omitempty"` // how By was named then ("Ada (@ada, 42)"), for admins
	At     time.Time  `json:"at"`
	// From is the id the group had before it became a supergroup (0 when it
	// never moved): the permission moved with it.
	From int64 `json:"from,omitempty"`
}

// GroupState says whether users may register in a group.
type GroupState string

// The group states.
const (
	GroupAllowed GroupState = "allowed" // /access registers users here
	GroupRefused GroupState = "refused" // the bot left; what still comes from here is ignored
)

// Audit actions of the group methods, appended in the transaction of the change.
const (
	ActionGroupAllow  = "group.allow"
	ActionGroupRefuse = "group.refuse"
	ActionGroupRemove = "group.remove"
	ActionGroupMove   = "group.move"
)

// Subject is how events name the group: "group/-100123".
func (g Group) Subject() string { return fmt.Sprintf("group/%d", g.ChatID) }

// PutGroup creates or replaces the record of g.ChatID (At is set to now when
// zero) and appends a group.allow or group.refuse event with g.By as actor.
// The chat id must be negative and the state one of the group states.
func (s *Store) PutGroup(g Group) (Group, error) {
	if g.ChatID >= 0 {
		return g, fmt.Errorf("put group %d: not a group id (group ids are negative): %w", g.ChatID, ErrInvalid)
	}
	action := ActionGroupAllow
	switch g.State {
	case GroupAllowed:
	case GroupRefused:
		action = ActionGroupRefuse
	default:
		return g, fmt.Errorf("put group %d: unknown state %q: %w", g.ChatID, g.State, ErrInvalid)
	}
	err := s.update(func(t *Tx) error {
		if g.At.IsZero() {
			g.At = t.now
		}
		if err := putJSON(t.bucket(bGroups), i64(g.ChatID), g); err != nil {
			return fmt.Errorf("put group %d: %w", g.ChatID, err)
		}
		_, err := t.AddEvent(Event{Actor: g.By, Action: action, Subject: g.Subject(), Detail: g.Title})
		return err
	})
	return g, err
}

// Group returns the record of the group with this chat id (ErrNotFound when
// there is none).
func (s *Store) Group(chatID int64) (Group, error) {
	var g Group
	err := s.view(func(t *Tx) error {
		var err error
		g, err = t.group(chatID)
		return err
	})
	return g, err
}

func (t *Tx) group(chatID int64) (Group, error) {
	var g Group
	ok, err := getJSON(t.bucket(bGroups), i64(chatID), &g)
	if err != nil {
		return g, fmt.Errorf("group %d: %w", chatID, err)
	}
	if !ok {
		return g, fmt.Errorf("group %d: %w", chatID, ErrNotFound)
	}
	return g, nil
}

// Groups returns every group record, ordered by chat id.
func (s *Store) Groups() ([]Group, error) {
	var out []Group
	err := s.view(func(t *Tx) error {
		b := t.bucket(bGroups)
		return b.ForEach(func(k, _ []byte) error {
			var g Group
			if _, err := getJSON(b, k, &g); err != nil {
				return err
			}
			out = append(out, g)
			return nil
		})
	})
	return out, err
}

// DeleteGroup removes the record of the group and appends a group.remove event
// with actor by; it returns the record removed (ErrNotFound when there was none).
func (s *Store) DeleteGroup(chatID, by int64) (Group, error) {
	var g Group
	err := s.update(func(t *Tx) error {
		var err error
		if g, err = t.group(chatID); err != nil {
			return err
		}
		if err := t.bucket(bGroups).Delete(i64(chatID)); err != nil {
			return fmt.Errorf("delete group %d: %w", chatID, err)
		}
		_, err = t.AddEvent(Event{Actor: by, Action: ActionGroupRemove, Subject: g.Subject(), Detail: string(g.State)})
		return err
	})
	return g, err
}

// MoveGroup follows a group that became the supergroup to: its record moves
// to the new id (From set to the old one) and a group.move event is appended,
// in one transaction. ErrNotFound when from has no record.
func (s *Store) MoveGroup(from, to int64) (Group, error) {
	var g Group
	if to >= 0 {
		return g, fmt.Errorf("move group %d to %d: not a group id: %w", from, to, ErrInvalid)
	}
	err := s.update(func(t *Tx) error {
		var err error
		if g, err = t.group(from); err != nil {
			return err
		}
		b := t.bucket(bGroups)
		if err := b.Delete(i64(from)); err != nil {
			return fmt.Errorf("move group %d: %w", from, err)
		}
		g.ChatID, g.From = to, from
		if err := putJSON(b, i64(to), g); err != nil {
			return fmt.Errorf("move group %d: %w", from, err)
		}
		_, err = t.AddEvent(Event{Action: ActionGroupMove, Subject: g.Subject(), Detail: fmt.Sprintf("from %d", from)})
		return err
	})
	return g, err
}
