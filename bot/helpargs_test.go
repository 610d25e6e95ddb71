package bot

import (
	"slices"
	"testing"
)

func TestReadableArgs(t *testing.T) {
	for _, tt := range []struct {
		allowed []string
		want    []string
		more    bool
	}{
		{[]string{"{}", `-p\d{1,2}`}, []string{"-pN"}, false},
		{[]string{"--opt", "--gfn[012]"}, []string{"--opt", "--gfn0", "--gfn1", "--gfn2"}, false},
		{[]string{"--chrg=-?[0-9]+"}, nil, true},
		{[]string{"(?i)--opt", ".*"}, nil, true},
		{[]string{"--alpb=(water|dmso)", `\d+`}, []string{"--alpb=water", "--alpb=dmso", "N"}, false},
		{[]string{"{}"}, nil, false},
	} {
		got, more := readableArgs(tt.allowed)
		if !slices.Equal(got, tt.want) || more != tt.more {
			t.Errorf("readableArgs(%q) = %q, %v; want %q, %v", tt.allowed, got, more, tt.want, tt.more)
		}
	}
	if got := exampleCaption("/opt/orca/orca_submit", []string{"{}", "-p8"}); got != "orca_submit {} -p8" {
		t.Errorf("exampleCaption = %q", got)
	}
}
