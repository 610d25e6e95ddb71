package tgtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"hpcbot/bot/tgtest"
)

// TestHoldAnswer: a held call takes effect, its answer never comes while the
// client waits, and the server lets go when the client does; the calls it
// does not match are answered as usual.
func TestHoldAnswer(t *testing.T) {
	s := tgtest.New(t)
	id := sendCard(t, s, "card", keyboard([]tgtest.InlineButton{btn("Cancel", "cancel:1")}))
	done := s.HoldAnswer("editMessageText", func(p map[string]string) bool { return p["text"] == "held" })
	if a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "other"}); !a.OK {
		t.Fatalf("an edit the hold does not match: %+v", a)
	}
	ctx, cancel := context.WithCancel(context.Background())
	body, _ := json.Marshal(map[string]any{"chat_id": alice.ID, "message_id": id, "text": "held"})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL+"/bot"+s.Token+"/editMessageText", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	errc := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	select {
	case <-done:
	case err := <-errc:
		t.Fatalf("the held call ended: %v", err)
	case <-time.After(tgtest.WaitTimeout):
		t.Fatal("the hold never took the call")
	}
	if m, _ := s.Message(alice.ID, id); m.Text != "held" {
		t.Fatalf("the held edit did not take effect: %q", m.Text)
	}
	select {
	case err := <-errc:
		t.Fatalf("the held call was answered: %v", err)
	default:
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the client's call ended with %v, want its cancellation", err)
	}
	calls := s.Calls("editMessageText")
	if last := calls[len(calls)-1]; last.Code != -1 {
		t.Errorf("the held call's code %d, want -1", last.Code)
	}
	// Once only: the next matching call is answered.
	if a := call(t, s, "editMessageText", map[string]any{"chat_id": alice.ID, "message_id": id, "text": "held", "parse_mode": ""}); a.OK || a.ErrorCode != 400 {
		t.Fatalf("the same edit again: %+v, want 400 not modified", a)
	}
}
