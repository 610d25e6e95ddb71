package cluster

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"hpcbot/plugins"
	"hpcbot/plugins/shellquote"
)

var _ plugins.Tailer = (*Scheduler)(nil)

// tailMark starts the line Tail's command prints before the bytes it read.
const tailMark = "hpcbot-tail: "

// tailSlack is how many bytes past MaxBytes Tail reads: the first, partial
// line is dropped and escape sequences are removed, so a little more than the
// cap still fills it.
const tailSlack = 4 << 10

// Tail reads the end of the job's standard output or error (Dialect.StreamFiles)
// in one remote command: it picks the stream (see plugins.TailRequest), then
// `tail -c` reads only the last MaxBytes (plus a little) of it, whatever its
// size. Links and special files are never read. A missing folder or no stream
// file yet is KindNotFound.
func (s *Scheduler) Tail(ctx context.Context, req plugins.TailRequest) (plugins.TailResult, error) {
	tr, upload, err := s.transport()
	if err != nil {
		return plugins.TailResult{}, err
	}
	dir, err := remoteDir(upload, req.Folder)
	if err != nil {
		return plugins.TailResult{}, err
	}
	lines, size := plugins.TailCaps(req.MaxLines, req.MaxBytes)
	out, errf := s.d.StreamFiles(req)
	if out == "" && errf == "" {
		return plugins.TailResult{}, plugins.Errorf(plugins.KindNotFound, "tail of job %s: the %s scheduler keeps no output file for job name %q", req.JobID, s.d.Name(), req.JobName)
	}
	names := []string{out, errf}
	streams := []string{plugins.StreamOutput, plugins.StreamError}
	if req.PreferError {
		names[0], names[1] = names[1], names[0]
		streams[0], streams[1] = streams[1], streams[0]
	}
	read := size + tailSlack
	cmd := tailCommand(dir, names, read+1)
	r, err := tr.Run(ctx, cmd)
	if err != nil {
		return plugins.TailResult{}, fmt.Errorf("tail of job %s: %w", req.JobID, err)
	}
	switch r.ExitCode {
	case 0:
	case 3:
		return plugins.TailResult{}, plugins.Errorf(plugins.KindNotFound, "tail of job %s: folder %s: %s", req.JobID, req.Folder, brief(r))
	case 4:
		return plugins.TailResult{}, plugins.Errorf(plugins.KindNotFound, "tail of job %s: no output yet (neither %s exists as a regular file)", req.JobID, strings.Join(nonEmpty(names), " nor "))
	default:
		// The command ran, so the cluster answers: a non-zero exit is about the
		// file (unreadable, vanished, a user's own chmod), never the connection,
		// and must not make the cluster look unreachable.
		return plugins.TailResult{}, plugins.Errorf(plugins.KindPermanent, "tail of job %s: exit %d: %s", req.JobID, r.ExitCode, brief(r))
	}
	head, data, ok := bytes.Cut(r.Stdout, []byte("\n"))
	which, found := strings.CutPrefix(string(head), tailMark)
	i, err := strconv.Atoi(which)
	if !ok || !found || err != nil || i < 0 || i > 1 {
		return plugins.TailResult{}, plugins.Errorf(plugins.KindPermanent, "tail of job %s: unexpected output: %s", req.JobID, excerpt(string(head)))
	}
	whole := len(data) <= read
	if !whole {
		data = data[1:]
	}
	text, cut := plugins.TailText(data, whole, lines, size)
	return plugins.TailResult{Text: text, Stream: streams[i], Truncated: cut}, nil
}

func nonEmpty(names []string) []string {
	var out []string
	for _, n := range names {
		if n != "" {
			out = append(out, n)
		}
	}
	return out
}

// tailCommand picks the first of names that is a regular file with content,
// else the first that is a regular file, prints tailMark and its index, then
// its last n bytes. Exit 3: no folder; 4: no file.
func tailCommand(dir string, names []string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cd %s || exit 3\n", shellquote.Quote(dir))
	b.WriteString("hb_pick=\n")
	for _, test := range []string{"-s", "-e"} {
		for i, name := range names {
			if name == "" {
				continue
			}
			q := shellquote.Quote(name)
			fmt.Fprintf(&b, "if [ -z \"$hb_pick\" ] && [ -f %s ] && [ ! -h %s ] && [ %s %s ]; then hb_pick=%d; hb_file=%s; fi\n",
				q, q, test, q, i, q)
		}
	}
	b.WriteString("[ -n \"$hb_pick\" ] || exit 4\n")
	fmt.Fprintf(&b, "printf '%s%%s\\n' \"$hb_pick\" && exec tail -c %s -- \"$hb_file\"\n",
		tailMark, shellquote.Quote(strconv.Itoa(n)))
	return b.String()
}
