package store

import (
	"errors"
	"fmt"
	"strings"
)

// TelegramAccount links a Telegram user to a User. Username is kept without
// the leading "@"; it can change or be taken by someone else, so never use it
// for authorization.
type TelegramAccount struct {
	TelegramID   int64  `json:"telegram_id"`
	UserID       uint64 `json:"user_id"`
	Username     string `json:"username,omitempty"`
	DisplayName  string `json:"display_name,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

func normUsername(u string) string {
	return strings.TrimPrefix(strings.TrimSpace(u), "@")
}

func usernameKey(u string) []byte { return []byte(strings.ToLower(normUsername(u))) }

// UpsertAccount creates or replaces the account with acc.TelegramID. Its user
// must exist. The username index follows renames: the old @username stops
// resolving, and when another account held the new @username (Telegram lets
// names be given up and taken) that account loses it.
func (s *Store) UpsertAccount(acc TelegramAccount) error {
	return s.update(func(t *Tx) error { return t.upsertAccount(acc) })
}

func (t *Tx) upsertAccount(acc TelegramAccount) error {
	if acc.TelegramID == 0 {
		return fmt.Errorf("upsert account: telegram id 0: %w", ErrInvalid)
	}
	if _, err := t.user(acc.UserID); err != nil {
		return fmt.Errorf("upsert account %d: %w", acc.TelegramID, err)
	}
	acc.Username = normUsername(acc.Username)
	accounts := t.bucket(bAccounts)
	byName := t.bucket(bAccByUsername)
	byUser := t.bucket(bAccByUser)
	key := i64(acc.TelegramID)

	var old TelegramAccount
	exists, err := getJSON(accounts, key, &old)
	if err != nil {
		return err
	}
	if exists {
		if old.Username != "" && !strings.EqualFold(old.Username, acc.Username) {
			ok := usernameKey(old.Username)
			if v := byName.Get(ok); v != nil && getI64(v) == acc.TelegramID {
				if err := byName.Delete(ok); err != nil {
					return err
				}
			}
		}
		if old.UserID != acc.UserID {
			if err := byUser.Delete(cat(u64(old.UserID), key)); err != nil {
				return err
			}
		}
	}
	if acc.Username != "" {
		nk := usernameKey(acc.Username)
		if v := byName.Get(nk); v != nil && getI64(v) != acc.TelegramID {
			var other TelegramAccount
			if ok, err := getJSON(accounts, v, &other); err != nil {
				return err
			} else if ok {
				other.Username = ""
				if err := putJSON(accounts, v, other); err != nil {
					return err
				}
			}
		}
		if err := byName.Put(nk, key); err != nil {
			return err
		}
	}
	if err := byUser.Put(cat(u64(acc.UserID), key), nil); err != nil {
		return err
	}
	return putJSON(accounts, key, acc)
}

// AccountByTelegramID returns the account of this Telegram user.
func (s *Store) AccountByTelegramID(id int64) (TelegramAccount, error) {
	var acc TelegramAccount
	err := s.view(func(t *Tx) error {
		var err error
		acc, err = t.account(id)
		return err
	})
	return acc, err
}

func (t *Tx) account(id int64) (TelegramAccount, error) {
	var acc TelegramAccount
	ok, err := getJSON(t.bucket(bAccounts), i64(id), &acc)
	if err != nil {
		return acc, err
	}
	if !ok {
		return acc, fmt.Errorf("telegram account %d: %w", id, ErrNotFound)
	}
	return acc, nil
}

// UserByTelegramID returns the account of this Telegram user and its user:
// the lookup behind every message.
func (s *Store) UserByTelegramID(id int64) (User, TelegramAccount, error) {
	var (
		u   User
		acc TelegramAccount
	)
	err := s.view(func(t *Tx) error {
		var err error
		if acc, err = t.account(id); err != nil {
			return err
		}
		u, err = t.user(acc.UserID)
		return err
	})
	return u, acc, err
}

// AccountByUsername returns the account with this @username (with or without
// the "@", any case).
func (s *Store) AccountByUsername(username string) (TelegramAccount, error) {
	var acc TelegramAccount
	err := s.view(func(t *Tx) error {
		v := t.bucket(bAccByUsername).Get(usernameKey(username))
		if v == nil || normUsername(username) == "" {
			return fmt.Errorf("telegram account @%s: %w", normUsername(username), ErrNotFound)
		}
		var err error
		acc, err = t.account(getI64(v))
		return err
	})
	return acc, err
}

// AccountsOfUser returns the Telegram accounts linked to a user, ordered by Telegram id.
func (s *Store) AccountsOfUser(userID uint64) ([]TelegramAccount, error) {
	var out []TelegramAccount
	err := s.view(func(t *Tx) error {
		prefix := u64(userID)
		c := t.bucket(bAccByUser).Cursor()
		for k, _ := c.Seek(prefix); len(k) == 16 && string(k[:8]) == string(prefix); k, _ = c.Next() {
			acc, err := t.account(getI64(k[8:]))
			if err != nil {
				return err
			}
			out = append(out, acc)
		}
		return nil
	})
	return out, err
}

// RegisterUser returns the user behind acc.TelegramID, or creates a user with
// the given calculation limit and links the account to it, in one transaction.
// created says which happened. For an existing account the username, display
// name and language code are refreshed from acc. Creating appends a
// "user.register" event.
func (s *Store) RegisterUser(acc TelegramAccount, limit int) (User, bool, error) {
	var (
		u       User
		created bool
	)
	err := s.update(func(t *Tx) error {
		old, err := t.account(acc.TelegramID)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		if err == nil {
			if u, err = t.user(old.UserID); err != nil {
				return err
			}
			acc.UserID = old.UserID
			return t.upsertAccount(acc)
		}
		if u, err = t.createUser(User{Limit: limit}); err != nil {
			return err
		}
		acc.UserID = u.ID
		if err := t.upsertAccount(acc); err != nil {
			return err
		}
		created = true
		_, err = t.AddEvent(Event{Actor: acc.TelegramID, Action: "user.register", Subject: u.Subject(),
			Detail: fmt.Sprintf("telegram %d @%s", acc.TelegramID, normUsername(acc.Username))})
		return err
	})
	if err != nil {
		return User{}, false, fmt.Errorf("register telegram user %d: %w", acc.TelegramID, err)
	}
	return u, created, nil
}
