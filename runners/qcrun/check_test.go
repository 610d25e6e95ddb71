package qcrun

import (
	"context"
	"errors"
	"strings"
	"testing"

	"hpcbot/plugins"
)

type checkCase struct {
	name, file, caption, content string
	want                         plugins.InputResources
	refusal                      *plugins.Refusal
}

func runChecks(t *testing.T, r *Runner, cases []checkCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.file, c.content)
			got, err := r.Check(context.Background(), plugins.CheckInputRequest{FileName: c.file, Caption: c.caption, Path: path})
			if c.refusal != nil {
				var ref *plugins.Refusal
				if !errors.As(err, &ref) {
					t.Fatalf("got %+v, %v; want refusal %+v", got, err, *c.refusal)
				}
				if *ref != *c.refusal {
					t.Fatalf("refusal %+v, want %+v", *ref, *c.refusal)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
			}
		})
	}
}

func TestCheckEveryInput(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	runChecks(t, r, []checkCase{
		{name: "empty", file: "a.inp", content: "", refusal: &plugins.Refusal{Code: plugins.RefuseInputEmpty}},
		{name: "blank", file: "a.inp", content: " \n\t\r\n\n", refusal: &plugins.Refusal{Code: plugins.RefuseInputEmpty}},
		{name: "utf8 bom", file: "a.inp", content: "\xEF\xBB\xBF! HF\n", refusal: &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-8 with BOM", Line: 1}},
		{name: "utf16le bom", file: "a.inp", content: "\xFF\xFE!\x00 \x00", refusal: &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1}},
		{name: "utf16be bom", file: "a.inp", content: "\xFE\xFF\x00!", refusal: &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1}},
		{name: "utf16le no bom", file: "a.inp", content: "!\x00 \x00H\x00F\x00", refusal: &plugins.Refusal{Code: plugins.RefuseInputEncoding, Detail: "UTF-16", Line: 1}},
		{name: "zero byte", file: "a.inp", content: "! HF\n* xyz 0 1\nH 0 0 0\x00\n", refusal: &plugins.Refusal{Code: plugins.RefuseInputBinary, Line: 3}},
		{name: "plain", file: "a.inp", content: "! HF def2-SVP\n* xyz 0 1\nH 0 0 0\nH 0 0 0.74\n*\n"},
	})
}

func TestCheckORCA(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	runChecks(t, r, []checkCase{
		{name: "pal block", file: "a.inp", content: "! B3LYP\n%pal\n  nprocs 8\nend\n%maxcore 3000\n* xyz 0 1\nH 0 0 0\n*\n",
			want: plugins.InputResources{Tasks: 8, MemoryMB: 24000}},
		{name: "pal one line upper case", file: "a.inp", content: "%PAL NPROCS 4 END\n%MaxCore 1000\n! HF\n",
			want: plugins.InputResources{Tasks: 4, MemoryMB: 4000}},
		{name: "PAL keyword", file: "a.inp", content: "! B3LYP def2-SVP PAL8 Opt\n", want: plugins.InputResources{Tasks: 8}},
		{name: "maxcore alone", file: "a.inp", content: "%maxcore 2000\n! HF\n", want: plugins.InputResources{MemoryMB: 2000}},
		{name: "commented out", file: "a.inp", content: "! HF # PAL64\n#%pal nprocs 64 end\n", want: plugins.InputResources{}},
		{name: "nprocs outside pal", file: "a.inp", content: "%scf\n nprocs 64\nend\n! HF\n", want: plugins.InputResources{}},
		{name: "too many cores", file: "a.inp", content: "! B3LYP\n%pal\n  nprocs 64\nend\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 3, Detail: "64", Limit: "16"}},
		{name: "PAL keyword too many", file: "a.inp", content: "! HF PAL32\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 1, Detail: "32", Limit: "16"}},
		{name: "too much memory", file: "a.inp", content: "%pal nprocs 16 end\n%maxcore 4000\n! HF\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooMuchMemory, Line: 2, Detail: "64000", Limit: "32768"}},
	})
	// The real ORCA 6.0 input of a fixture: %pal nprocs 1, no %maxcore.
	content := readFixture(t, "orca6.0/dvb_gopt.inp")
	runChecks(t, r, []checkCase{{name: "fixture", file: "dvb_gopt.inp", content: content, want: plugins.InputResources{Tasks: 1}}})
}

func TestCheckGaussian(t *testing.T) {
	r := configured(t, Gaussian, gaussianRule())
	runChecks(t, r, []checkCase{
		{name: "fixture", file: "dvb_gopt.gjf", content: readFixture(t, "gaussian16/dvb_gopt.gjf"),
			want: plugins.InputResources{CPUsPerTask: 1, MemoryMB: 400}},
		{name: "nprocshared and GB", file: "a.gjf", content: "%NProcShared=8\n%Mem=12GB\n#p b3lyp/sto-3g\n\ntitle\n\n0 1\nH 0 0 0\n\n",
			want: plugins.InputResources{CPUsPerTask: 8, MemoryMB: 12288}},
		{name: "words", file: "a.com", content: "%mem=100000000\n#p hf\n", want: plugins.InputResources{MemoryMB: 763}},
		{name: "MW", file: "a.com", content: "%mem=100MW\n#p hf\n", want: plugins.InputResources{MemoryMB: 800}},
		{name: "cpu list", file: "a.com", content: "%cpu=0-3,8-9\n#p hf\n", want: plugins.InputResources{CPUsPerTask: 6}},
		{name: "too many", file: "a.gjf", content: "%chk=a.chk\n%nprocshared=32\n#p hf\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 2, Detail: "32", Limit: "8"}},
		{name: "second step asks more", file: "a.gjf", content: "%nprocshared=4\n#p hf\n\nt\n\n0 1\nH 0 0 0\n\n--Link1--\n%nprocshared=12\n#p hf geom=check\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 10, Detail: "12", Limit: "8"}},
		{name: "too much memory", file: "a.gjf", content: "%mem=32GB\n#p hf\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseTooMuchMemory, Line: 1, Detail: "32768", Limit: "16384"}},
	})
}

func TestCheckXTB(t *testing.T) {
	r := configured(t, XTB, xtbRule())
	water := "3\nwater\nO 0.0 0.0 0.1173\nH 0.0 0.7572 -0.4692\nH 0.0 -0.7572 -0.4692\n"
	runChecks(t, r, []checkCase{
		{name: "water", file: "water.xyz", caption: "xtb {} --opt", content: water},
		{name: "water, trailing blank lines", file: "water.xyz", content: water + "\n\n"},
		{name: "crlf", file: "water.xyz", content: strings.ReplaceAll(water, "\n", "\r\n")},
		{name: "fixture", file: "water.xyz", content: readFixture(t, "xtb6.5.1/water.xyz")},
		{name: "trajectory", file: "traj.xyz", content: water + water},
		{name: "threads", file: "water.xyz", caption: "xtb {} --opt -P 4", content: water, want: plugins.InputResources{CPUsPerTask: 4}},
		{name: "count says 5", file: "bad.xyz", content: readFixture(t, "xtb6.5.1/bad_count.xyz"),
			refusal: &plugins.Refusal{Code: plugins.RefuseXYZCount, Line: 1, Detail: "5", Limit: "3"}},
		{name: "count says 2", file: "bad.xyz", content: strings.Replace(water, "3\n", "2\n", 1),
			refusal: &plugins.Refusal{Code: plugins.RefuseXYZCount, Line: 1, Detail: "2", Limit: "3"}},
		{name: "no count", file: "bad.xyz", content: "water\nO 0 0 0\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseXYZHeader, Line: 1}},
		{name: "broken atom line", file: "bad.xyz", content: "3\nwater\nO 0.0 0.0 0.1173\nH 0.0 0.7572\nH 0.0 -0.7572 -0.4692\n",
			refusal: &plugins.Refusal{Code: plugins.RefuseXYZAtom, Line: 4}},
		{name: "threads above max_cores", file: "water.xyz", caption: "xtb {} -P 8", content: water,
			refusal: &plugins.Refusal{Code: plugins.RefuseCaptionCores, Detail: "8", Limit: "4"}},
		{name: "not an xyz", file: "water.coord", caption: "xtb {}", content: "$coord\n$end\n"},
	})
}

// A line longer than MaxCheckLine is looked at cut, never held whole.
func TestCheckLongLine(t *testing.T) {
	r := configured(t, ORCA, orcaRule())
	content := "! HF " + strings.Repeat("x", 4*MaxCheckLine) + "\n%pal nprocs 64 end\n"
	runChecks(t, r, []checkCase{{name: "long line", file: "a.inp", content: content,
		refusal: &plugins.Refusal{Code: plugins.RefuseTooManyCores, Line: 2, Detail: "64", Limit: "16"}}})
}
