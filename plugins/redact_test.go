package plugins

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(Redact(slog.NewTextHandler(&buf, nil), "123:ABC", "", "hunter2"))
	log.With("token", "123:ABC").WithGroup("g").Info("GET /bot123:ABC/getMe",
		"err", errors.New("dial: 123:ABC refused"),
		"pw", Secret("hunter2"),
		"any", struct{ S string }{"x hunter2"},
		slog.Group("inner", "v", "hunter2"))
	out := buf.String()
	if strings.Contains(out, "123:ABC") || strings.Contains(out, "hunter2") {
		t.Errorf("secret in log: %s", out)
	}
	if n := strings.Count(out, "[redacted]"); n != 6 {
		t.Errorf("%d redactions, want 6: %s", n, out)
	}
	if h := slog.NewTextHandler(&buf, nil); Redact(h) != slog.Handler(h) {
		t.Error("no secrets: the handler should be returned as is")
	}
}
