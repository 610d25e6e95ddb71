package store

import (
	"fmt"
	"strings"
	"time"
)

// User is a person who may run calculations. Org is an organization label.
// Limit is how many calculations the user may create per quota window.
type User struct {
	ID        uint64    `json:"id"`
	FirstName string    `json:"first_name,omitempty"`
	LastName  string    `json:"last_name,omitempty"`
	Org       string    `json:"org,omitempty"`
	Approved  bool      `json:"approved,omitempty"`
	Blocked   bool      `json:"blocked,omitempty"`
	Limit     int       `json:"limit"`
	Created   time.Time `json:"created"`
}

// Subject is how events name the user: "user/7".
func (u User) Subject() string { return fmt.Sprintf("user/%d", u.ID) }

// CreateUser stores a new user and returns it with its ID (and Created, when
// zero) filled in. u.ID is ignored.
func (s *Store) CreateUser(u User) (User, error) {
	err := s.update(func(t *Tx) error {
		var err error
		u, err = t.createUser(u)
		return err
	})
	return u, err
}

func (t *Tx) createUser(u User) (User, error) {
	if u.Limit < 0 {
		return u, fmt.Errorf("create user: negative limit %d: %w", u.Limit, ErrInvalid)
	}
	b := t.bucket(bUsers)
	id, err := b.NextSequence()
	if err != nil {
		return u, fmt.Errorf("create user: %w", err)
	}
	u.ID = id
	if u.Created.IsZero() {
		u.Created = t.now
	}
	if err := putJSON(b, u64(id), u); err != nil {
		return u, fmt.Errorf("create user: %w", err)
	}
	return u, nil
}

// User returns the user with this id.
func (s *Store) User(id uint64) (User, error) {
	var u User
	err := s.view(func(t *Tx) error {
		var err error
		u, err = t.user(id)
		return err
	})
	return u, err
}

func (t *Tx) user(id uint64) (User, error) {
	var u User
	ok, err := getJSON(t.bucket(bUsers), u64(id), &u)
	if err != nil {
		return u, fmt.Errorf("user %d: %w", id, err)
	}
	if !ok {
		return u, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	return u, nil
}

// UpdateUser loads the user, lets fn change it and stores the result in one
// transaction. fn may queue events or messages on the Tx; when fn returns an
// error nothing is written. The ID and Created time cannot change.
func (s *Store) UpdateUser(id uint64, fn func(*Tx, *User) error) (User, error) {
	var u User
	err := s.update(func(t *Tx) error {
		var err error
		if u, err = t.user(id); err != nil {
			return err
		}
		before := u
		if err := fn(t, &u); err != nil {
			return err
		}
		if u.ID != before.ID || !u.Created.Equal(before.Created) {
			return fmt.Errorf("update user %d: ID and Created may not change: %w", id, ErrInvalid)
		}
		if u.Limit < 0 {
			return fmt.Errorf("update user %d: negative limit %d: %w", id, u.Limit, ErrInvalid)
		}
		return putJSON(t.bucket(bUsers), u64(id), u)
	})
	return u, err
}

// Users returns every user, ordered by id.
func (s *Store) Users() ([]User, error) {
	return s.filterUsers(func(*Tx, User) bool { return true })
}

// SearchUsers returns the users whose last name, first name and organization
// contain the given parts, case-insensitively; empty parts are ignored. The
// organization part matches the label, name or alias of the user's organization.
func (s *Store) SearchUsers(last, first, org string) ([]User, error) {
	last = strings.ToLower(strings.TrimSpace(last))
	first = strings.ToLower(strings.TrimSpace(first))
	org = strings.ToLower(strings.TrimSpace(org))
	var orgs map[string]Organization
	return s.filterUsers(func(t *Tx, u User) bool {
		if !strings.Contains(strings.ToLower(u.LastName), last) || !strings.Contains(strings.ToLower(u.FirstName), first) {
			return false
		}
		if org == "" {
			return true
		}
		if orgs == nil {
			orgs = storedOrgs(t)
		}
		o := orgs[u.Org]
		return strings.Contains(strings.ToLower(u.Org), org) ||
			strings.Contains(strings.ToLower(o.Name), org) ||
			strings.Contains(strings.ToLower(o.Alias), org)
	})
}

func (s *Store) filterUsers(keep func(*Tx, User) bool) ([]User, error) {
	var out []User
	err := s.view(func(t *Tx) error {
		b := t.bucket(bUsers)
		return b.ForEach(func(k, _ []byte) error {
			var u User
			if _, err := getJSON(b, k, &u); err != nil {
				return err
			}
			if keep(t, u) {
				out = append(out, u)
			}
			return nil
		})
	})
	return out, err
}
