package store

import (
	"sort"
	"time"
)

// UserUsage is a user's calculations in a window: Count those that count for
// the quota (what the limit is compared with), Total all of them.
type UserUsage struct {
	User  User
	Count int
	Total int
}

// OrgUsage sums UserUsage per organization label ("" for users without one).
// Users is how many of its users created any calculation in the window.
type OrgUsage struct {
	Org   string
	Name  string
	Users int
	Count int
	Total int
}

// Usage counts the calculations created after since, per user (every user,
// also those with none) and per organization (those with any user), most
// active first (Count, then Total, then id or label). It reads each user's
// index range inside the window, not every calculation.
func (s *Store) Usage(since time.Time) ([]UserUsage, []OrgUsage, error) {
	var users []UserUsage
	byOrg := map[string]*OrgUsage{}
	err := s.view(func(t *Tx) error {
		orgs := storedOrgs(t)
		b := t.bucket(bUsers)
		return b.ForEach(func(k, _ []byte) error {
			var u User
			if _, err := getJSON(b, k, &u); err != nil {
				return err
			}
			counted, all := t.countSince(u.ID, since)
			users = append(users, UserUsage{User: u, Count: counted, Total: all})
			o := byOrg[u.Org]
			if o == nil {
				o = &OrgUsage{Org: u.Org, Name: orgs[u.Org].Name}
				byOrg[u.Org] = o
			}
			o.Count += counted
			o.Total += all
			if all > 0 {
				o.Users++
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, err
	}
	sort.SliceStable(users, func(i, j int) bool {
		a, b := users[i], users[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Total != b.Total {
			return a.Total > b.Total
		}
		return a.User.ID < b.User.ID
	})
	orgs := make([]OrgUsage, 0, len(byOrg))
	for _, o := range byOrg {
		orgs = append(orgs, *o)
	}
	sort.Slice(orgs, func(i, j int) bool {
		a, b := orgs[i], orgs[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Total != b.Total {
			return a.Total > b.Total
		}
		return a.Org < b.Org
	})
	return users, orgs, nil
}
