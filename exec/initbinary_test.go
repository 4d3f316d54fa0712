package exec_test

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/weir-dev/weir/exec"
)

// TestInitBinary builds weir-sandbox-init and runs nodes with it as the
// container init and shim; with /bin/false as the init binary the sandbox
// fails to start, which shows the init really is handed over.
func TestInitBinary(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	gobin, err := osexec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build weir-sandbox-init")
	}
	bin := filepath.Join(t.TempDir(), "weir-sandbox-init")
	if out, err := osexec.Command(gobin, "build", "-o", bin, "./cmd/weir-sandbox-init").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name, init string
		ok         bool
	}{
		{"small-init", bin, true},
		{"false-init", "/bin/false", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := exec.New(exec.Config{StateDir: dir, InitBinary: tc.init})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			in := filepath.Join(t.TempDir(), "x")
			mustWrite(t, in, "42")
			out := t.TempDir()
			res, err := s.Run(context.Background(), exec.Spec{ID: "init-" + tc.name, Env: []string{"PATH=/bin"},
				Inputs: map[string]string{"x": in}, Output: out,
				Args: []string{"/bin/sh", "-c", "cp /in/x /out/x; ls /proc/self/fd | tr '\\n' ' '; grep -E '^(NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\\t'"}})
			if err != nil {
				t.Fatal(err)
			}
			if !tc.ok {
				if res.Reason != exec.ReasonSetup {
					t.Errorf("init /bin/false: want setup failure, got %s", explain(res))
				}
				return
			}
			if res.Reason != exec.ReasonOK {
				t.Fatalf("got %s", explain(res))
			}
			if got := string(res.Output); got != "0 1 2 3 NoNewPrivs:1\nSeccomp:2\n" {
				t.Errorf("output %q", got)
			}
			if b, _ := os.ReadFile(filepath.Join(out, "x")); string(b) != "42" {
				t.Errorf("output file %q", b)
			}
			s.Close() // and the sandboxes its pool has built since
			mi, _ := os.ReadFile("/proc/thread-self/mountinfo")
			if strings.Contains(string(mi), dir+"/") {
				t.Errorf("mount left under %s", dir)
			}
		})
	}
}
