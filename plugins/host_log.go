package plugins

import (
	"bytes"
	"context"
	"io"
	"log"
	"log/slog"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// slogHCLog is the hclog.Logger go-plugin logs to on the host side. It writes to
// an slog.Logger already tagged with plugin and cluster. Records parsed from the
// plugin's stderr (go-plugin hands them to a Named logger) keep their level;
// go-plugin's own chatter (the root logger) is demoted to debug below warn.
type slogHCLog struct {
	log     *slog.Logger
	name    string
	implied []any
}

var _ hclog.Logger = (*slogHCLog)(nil)

func slogLevel(l hclog.Level) slog.Level {
	switch l {
	case hclog.Trace:
		return slog.LevelDebug - 4
	case hclog.Debug:
		return slog.LevelDebug
	case hclog.Warn:
		return slog.LevelWarn
	case hclog.Error:
		return slog.LevelError
	}
	return slog.LevelInfo
}

func (l *slogHCLog) Log(level hclog.Level, msg string, args ...any) {
	lvl := slogLevel(level)
	if l.name == "" && lvl < slog.LevelWarn {
		lvl = slog.LevelDebug
	}
	ctx := context.Background()
	if !l.log.Enabled(ctx, lvl) {
		return
	}
	all := make([]any, 0, len(l.implied)+len(args))
	all = append(all, l.implied...)
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "timestamp", "@module": // the plugin's clock and logger name; the record has its own
			continue
		case "plugin": // go-plugin's name for the executable path
			all = append(all, "plugin_path", args[i+1])
			continue
		}
		all = append(all, args[i], args[i+1])
	}
	if len(args)%2 == 1 {
		all = append(all, "extra", args[len(args)-1])
	}
	l.log.Log(ctx, lvl, msg, all...)
}

func (l *slogHCLog) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *slogHCLog) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *slogHCLog) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *slogHCLog) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *slogHCLog) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *slogHCLog) enabled(level hclog.Level) bool {
	return l.log.Enabled(context.Background(), slogLevel(level))
}

func (l *slogHCLog) IsTrace() bool { return l.enabled(hclog.Trace) }
func (l *slogHCLog) IsDebug() bool { return l.enabled(hclog.Debug) }
func (l *slogHCLog) IsInfo() bool  { return l.enabled(hclog.Info) }
func (l *slogHCLog) IsWarn() bool  { return l.enabled(hclog.Warn) }
func (l *slogHCLog) IsError() bool { return l.enabled(hclog.Error) }

func (l *slogHCLog) ImpliedArgs() []any { return l.implied }

func (l *slogHCLog) With(args ...any) hclog.Logger {
	n := *l
	n.implied = append(append([]any(nil), l.implied...), args...)
	return &n
}

func (l *slogHCLog) Name() string { return l.name }

func (l *slogHCLog) Named(name string) hclog.Logger {
	n := *l
	if n.name != "" {
		name = n.name + "." + name
	}
	n.name = name
	return &n
}

func (l *slogHCLog) ResetNamed(name string) hclog.Logger {
	n := *l
	n.name = name
	return &n
}

// SetLevel is a no-op: the slog handler decides.
func (l *slogHCLog) SetLevel(hclog.Level) {}

func (l *slogHCLog) GetLevel() hclog.Level {
	for _, lv := range []hclog.Level{hclog.Trace, hclog.Debug, hclog.Info, hclog.Warn, hclog.Error} {
		if l.enabled(lv) {
			return lv
		}
	}
	return hclog.Off
}

func (l *slogHCLog) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *slogHCLog) StandardWriter(*hclog.StandardLoggerOptions) io.Writer {
	return &lineLogger{l: l}
}

// lineLogger logs each written line at info.
type lineLogger struct{ l *slogHCLog }

func (w *lineLogger) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		w.l.Info(line)
	}
	return len(p), nil
}

// tail keeps the last lines written to it that are not hclog JSON records (those
// reach the log one by one): the plugin's raw stderr, such as a panic's stack, for
// the log entry that reports the plugin's death.
type tail struct {
	mu    sync.Mutex
	lines []string
	part  []byte
}

const (
	tailLines   = 20
	tailLineMax = 512
)

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.add(string(t.part[:i]))
		t.part = t.part[i+1:]
	}
	if len(t.part) > tailLineMax {
		t.add(string(t.part))
		t.part = nil
	}
	return len(p), nil
}

func (t *tail) add(line string) {
	if strings.HasPrefix(line, `{"@level":`) {
		return
	}
	if len(line) > tailLineMax {
		line = line[:tailLineMax] + "…"
	}
	if len(t.lines) == tailLines {
		t.lines = append(t.lines[:0], t.lines[1:]...)
	}
	t.lines = append(t.lines, line)
}

// String is the kept lines, oldest first, plus an unterminated last line.
func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	lines := append([]string(nil), t.lines...)
	if len(t.part) > 0 {
		lines = append(lines, string(t.part))
	}
	return strings.Join(lines, "\n")
}
