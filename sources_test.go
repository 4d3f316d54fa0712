package weir

import (
	"io/fs"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
	"testing/fstest"
)

// TestRunnerSourcesCoverTheRunner: the fingerprint covers go.mod, go.sum
// and every Go file (tests aside) of the runner's packages as they are on
// disk, and the weir Python module the runner embeds, and nothing else.
func TestRunnerSourcesCoverTheRunner(t *testing.T) {
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(RunnerSources()) {
		t.Fatalf("RunnerSources() = %q", RunnerSources())
	}
	want := map[string]bool{"go.mod": true, "go.sum": true}
	for _, dir := range []string{"hooks/contract", "hooks/node", "cmd/weir-node", "hooks/node/py/weir"} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), ".py") {
				want[path.Join(dir, e.Name())] = true
			}
		}
	}
	got := map[string]bool{}
	fs.WalkDir(runnerSources, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			got[p] = true
		}
		return err
	})
	for p := range want {
		if !got[p] {
			t.Errorf("%s is not in the runner's sources", p)
		}
	}
	for p := range got {
		if !want[p] {
			t.Errorf("%s is in the runner's sources", p)
		}
	}
	for p := range got {
		b, _ := fs.ReadFile(runnerSources, p)
		if disk, err := os.ReadFile(p); err != nil || string(disk) != string(b) {
			t.Errorf("%s: embedded copy differs from the file", p)
		}
	}
}

// TestFingerprint: any change of a file's content or name changes the
// fingerprint, bytes moved between a name and a content too; tests do not
// count.
func TestFingerprint(t *testing.T) {
	base := fstest.MapFS{"go.mod": {Data: []byte("module m\n")}, "a/x.go": {Data: []byte("package a\n")}}
	h0, err := fingerprint(base)
	if err != nil {
		t.Fatal(err)
	}
	same := fstest.MapFS{"go.mod": base["go.mod"], "a/x.go": base["a/x.go"], "a/x_test.go": {Data: []byte("package a // test\n")}}
	if h, _ := fingerprint(same); h != h0 {
		t.Errorf("a test file changed the fingerprint")
	}
	for name, fsys := range map[string]fstest.MapFS{
		"content": {"go.mod": base["go.mod"], "a/x.go": {Data: []byte("package a \n")}},
		"name":    {"go.mod": base["go.mod"], "a/y.go": base["a/x.go"]},
		"moved":   {"go.mod": base["go.mod"], "a/x.g": {Data: []byte("opackage a\n")}},
		"added":   {"go.mod": base["go.mod"], "a/x.go": base["a/x.go"], "a/z.go": {Data: []byte("package a\n")}},
	} {
		if h, _ := fingerprint(fsys); h == h0 {
			t.Errorf("%s: the fingerprint did not change", name)
		}
	}
}
