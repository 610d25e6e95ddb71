package detached

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"hpcbot/plugins"
)

// FuzzJobScriptArgv: whatever the argument, the job script the submit command
// writes (quoted once more inside that command) runs the program with exactly
// that argument.
func FuzzJobScriptArgv(f *testing.F) {
	for _, s := range []string{"a b", "'", `"`, "$(id)", "`id`", "; rm -rf ~", "\\", "x\ny", "ü", "-n", "%s"} {
		f.Add(s)
	}
	d := NewDialectMaxJobs("local", 0)
	f.Fuzz(func(t *testing.T, arg string) {
		if strings.IndexByte(arg, 0) >= 0 || !utf8.ValidString(arg) {
			return
		}
		dir := t.TempDir()
		req := plugins.SubmitRequest{Argv: []string{"printf", "[%s]", arg}, JobName: "j"}
		if _, err := d.BatchScript(req, dir); err != nil {
			t.Fatal(err)
		}
		// The submit command writes the script with printf '%s' <quoted body>.
		cmd := d.SubmitCommand(req, dir, "")
		i := strings.Index(cmd, "printf '%s' ")
		j := strings.Index(cmd[i:], " || exit 1\n")
		if i < 0 || j < 0 {
			t.Fatalf("no script writer in %q", cmd)
		}
		write := "cd " + dir + " && " + cmd[i:i+j]
		if out, err := exec.CommandContext(context.Background(), "/bin/sh", "-c", write).CombinedOutput(); err != nil {
			t.Fatalf("writing the script: %v: %s", err, out)
		}
		// Run the script as written to disk (in the foreground here).
		got, err := exec.Command("/bin/sh", "-c", "cd "+dir+" && sh .hpcbot-run.sh && cat j.out").Output()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "["+arg+"]" {
			t.Fatalf("argument %q arrived as %q", arg, got)
		}
	})
}
