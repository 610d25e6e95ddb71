package tgtest

import (
	"net/http"
	"strings"
	"time"
)

// hold is a call whose answer the server keeps back (HoldAnswer).
type hold struct {
	method string
	match  func(params map[string]string) bool
	done   chan struct{}
}

// HoldAnswer makes the server carry out the next call of method whose
// parameters satisfy match (nil: any), and then keep its answer back until
// the client goes away (it gave up, or its process was killed) or
// WaitTimeout passes: the call took effect, and the client never heard so.
// That is the moment between an action and its record that a crash test
// kills the process in. The channel returned is closed once such a call was
// carried out. The held call's Code is -1, like a dropped one.
func (s *Server) HoldAnswer(method string, match func(params map[string]string) bool) <-chan struct{} {
	h := &hold{method: strings.ToLower(method), match: match, done: make(chan struct{})}
	s.mu.Lock()
	s.holds = append(s.holds, h)
	s.mu.Unlock()
	return h.done
}

// holdAnswer keeps the answer of a successful call back when a HoldAnswer
// takes it, and reports whether it did (the client has gone by then).
func (s *Server) holdAnswer(r *http.Request, idx int, method string, params map[string]string) bool {
	s.mu.Lock()
	var h *hold
	for i, c := range s.holds {
		if c.method == strings.ToLower(method) && (c.match == nil || c.match(params)) {
			h = c
			s.holds = append(s.holds[:i], s.holds[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	if h == nil {
		return false
	}
	s.setCode(idx, -1)
	close(h.done)
	t := time.NewTimer(WaitTimeout)
	defer t.Stop()
	select {
	case <-r.Context().Done():
	case <-t.C:
	}
	return true
}
