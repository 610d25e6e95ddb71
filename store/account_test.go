package store

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestRegisterUser(t *testing.T) {
	s, _ := openTest(t)
	u, created, err := s.RegisterUser(TelegramAccount{TelegramID: 100, Username: "@Ada", DisplayName: "Ada L"}, 5)
	if err != nil || !created || u.Limit != 5 || u.ID == 0 {
		t.Fatalf("first RegisterUser = %+v, %v, %v", u, created, err)
	}
	u2, created, err := s.RegisterUser(TelegramAccount{TelegramID: 100, Username: "ada_l", LanguageCode: "ru"}, 25)
	if err != nil || created || u2.ID != u.ID || u2.Limit != 5 {
		t.Fatalf("second RegisterUser = %+v, %v, %v; want the same user, not created", u2, created, err)
	}
	acc, err := s.AccountByTelegramID(100)
	if err != nil || acc.Username != "ada_l" || acc.LanguageCode != "ru" || acc.UserID != u.ID {
		t.Fatalf("account after re-register = %+v, %v", acc, err)
	}
	if got, acc, err := s.UserByTelegramID(100); err != nil || got.ID != u.ID || acc.TelegramID != 100 {
		t.Fatalf("UserByTelegramID = %+v, %+v, %v", got, acc, err)
	}
	if _, _, err := s.UserByTelegramID(101); !errors.Is(err, ErrNotFound) {
		t.Fatalf("UserByTelegramID(unknown) = %v", err)
	}
	if _, err := s.AccountByUsername("ada"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("old username still resolves: %v", err)
	}
	users, _ := s.Users()
	evs, _ := s.Events(time.Time{}, 0)
	if len(users) != 1 || len(evs) != 1 || evs[0].Action != ActionUserRegister || evs[0].Actor != 100 || evs[0].Subject != u.Subject() {
		t.Fatalf("users %v, events %+v", users, evs)
	}
}

func TestUsernameIndex(t *testing.T) {
	s, _ := openTest(t)
	a := newUser(t, s, 5)
	b := newUser(t, s, 5)
	steps := []struct {
		acc  TelegramAccount
		want map[string]int64 // username → telegram id (0 = not found)
	}{
		{TelegramAccount{TelegramID: 1, UserID: a.ID, Username: "Alice"}, map[string]int64{"alice": 1, "@ALICE": 1}},
		{TelegramAccount{TelegramID: 1, UserID: a.ID, Username: "alice2"}, map[string]int64{"alice": 0, "alice2": 1}},
		{TelegramAccount{TelegramID: 1, UserID: a.ID, Username: "ALICE2"}, map[string]int64{"alice2": 1}}, // case change only
		// Bob takes the name Alice gave up, then the one she holds now.
		{TelegramAccount{TelegramID: 2, UserID: b.ID, Username: "alice"}, map[string]int64{"alice": 2, "alice2": 1}},
		{TelegramAccount{TelegramID: 2, UserID: b.ID, Username: "alice2"}, map[string]int64{"alice": 0, "alice2": 2}},
		// Alice's account no longer claims it; a rename of hers must not steal it back.
		{TelegramAccount{TelegramID: 1, UserID: a.ID, Username: "carol"}, map[string]int64{"alice2": 2, "carol": 1}},
		{TelegramAccount{TelegramID: 2, UserID: b.ID, Username: ""}, map[string]int64{"alice2": 0, "carol": 1}},
		{TelegramAccount{TelegramID: 2, UserID: b.ID, Username: ""}, map[string]int64{"": 0}},
	}
	for i, st := range steps {
		if err := s.UpsertAccount(st.acc); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		for name, id := range st.want {
			acc, err := s.AccountByUsername(name)
			switch {
			case id == 0 && !errors.Is(err, ErrNotFound):
				t.Errorf("step %d: AccountByUsername(%q) = %+v, %v; want ErrNotFound", i, name, acc, err)
			case id != 0 && (err != nil || acc.TelegramID != id):
				t.Errorf("step %d: AccountByUsername(%q) = %+v, %v; want telegram id %d", i, name, acc, err, id)
			}
		}
	}
	if acc, _ := s.AccountByTelegramID(1); acc.Username != "carol" {
		t.Errorf("account 1 = %+v", acc)
	}
}

func TestAccountsOfUser(t *testing.T) {
	s, _ := openTest(t)
	a := newUser(t, s, 5)
	b := newUser(t, s, 5)
	for _, acc := range []TelegramAccount{{TelegramID: 30, UserID: a.ID}, {TelegramID: 10, UserID: a.ID}, {TelegramID: 20, UserID: b.ID}} {
		if err := s.UpsertAccount(acc); err != nil {
			t.Fatal(err)
		}
	}
	// Move 30 from a to b.
	if err := s.UpsertAccount(TelegramAccount{TelegramID: 30, UserID: b.ID}); err != nil {
		t.Fatal(err)
	}
	ids := func(u uint64) string {
		accs, err := s.AccountsOfUser(u)
		if err != nil {
			t.Fatal(err)
		}
		var out []int64
		for _, a := range accs {
			out = append(out, a.TelegramID)
		}
		return fmt.Sprint(out)
	}
	if got := ids(a.ID); got != "[10]" {
		t.Errorf("accounts of a = %s", got)
	}
	if got := ids(b.ID); got != "[20 30]" {
		t.Errorf("accounts of b = %s", got)
	}
	if err := s.UpsertAccount(TelegramAccount{TelegramID: 5, UserID: 999}); !errors.Is(err, ErrNotFound) {
		t.Errorf("account of an unknown user: %v", err)
	}
	if err := s.UpsertAccount(TelegramAccount{UserID: a.ID}); !errors.Is(err, ErrInvalid) {
		t.Errorf("telegram id 0: %v", err)
	}
	if _, err := s.AccountByTelegramID(-7); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown account: %v", err)
	}
}

func TestUsers(t *testing.T) {
	s, _ := openTest(t)
	if err := s.UpsertOrganizations([]Organization{{Label: "ioc", Name: "Institute of Organic Chemistry", Alias: "IOC"}}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []User{
		{FirstName: "Ada", LastName: "Lovelace", Org: "ioc", Limit: 5},
		{FirstName: "Alan", LastName: "Turing", Limit: 5},
		{FirstName: "Grace", LastName: "Hopper", Org: "ioc", Limit: 5},
	} {
		if _, err := s.CreateUser(u); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		last, first, org string
		want             string
	}{
		{"", "", "", "[1 2 3]"},
		{"LOVE", "", "", "[1]"},
		{"", "a", "", "[1 2 3]"},
		{"", "al", "", "[2]"},
		{"", "", "organic", "[1 3]"},
		{"", "", "ioc", "[1 3]"},
		{"hopper", "grace", "IOC", "[3]"},
		{"turing", "", "ioc", "[]"},
	}
	for _, tt := range tests {
		got, err := s.SearchUsers(tt.last, tt.first, tt.org)
		if err != nil {
			t.Fatal(err)
		}
		ids := []uint64{}
		for _, u := range got {
			ids = append(ids, u.ID)
		}
		if fmt.Sprint(ids) != tt.want {
			t.Errorf("SearchUsers(%q, %q, %q) = %v, want %s", tt.last, tt.first, tt.org, ids, tt.want)
		}
	}
	u, err := s.UpdateUser(2, func(tx *Tx, u *User) error {
		u.Approved, u.Limit = true, 25
		_, err := tx.AddEvent(Event{Actor: 7, Action: "user.approve", Subject: u.Subject()})
		return err
	})
	if err != nil || !u.Approved || u.Limit != 25 {
		t.Fatalf("UpdateUser = %+v, %v", u, err)
	}
	if _, err := s.UpdateUser(2, func(_ *Tx, u *User) error { u.ID = 9; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("changing the ID: %v", err)
	}
	if _, err := s.UpdateUser(2, func(_ *Tx, u *User) error { u.Limit = -1; return nil }); !errors.Is(err, ErrInvalid) {
		t.Errorf("negative limit: %v", err)
	}
	if _, err := s.UpdateUser(99, func(*Tx, *User) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown user: %v", err)
	}
	evs, _ := s.Events(time.Time{}, 0)
	if len(evs) != 1 || evs[0].Action != "user.approve" {
		t.Errorf("events = %+v", evs)
	}
}

func TestEvents(t *testing.T) {
	s, clk := openTest(t)
	t0 := clk.t
	for i := range 5 {
		clk.t = t0.Add(time.Duration(i) * time.Hour)
		if _, err := s.AddEvent(Event{Action: fmt.Sprintf("a%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddEvent(Event{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty action: %v", err)
	}
	got, _ := s.Events(t0.Add(2*time.Hour), 0)
	if len(got) != 3 || got[0].Action != "a4" || got[2].Action != "a2" {
		t.Errorf("Events(since) = %+v", got)
	}
	got, _ = s.Events(time.Time{}, 2)
	if len(got) != 2 || got[0].Action != "a4" || got[1].ID != 4 {
		t.Errorf("Events(limit 2) = %+v", got)
	}
}
