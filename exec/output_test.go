package exec_test

import (
	"context"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/exec"
)

// duOf is the disk space the files under dir take (blocks, not sizes).
func duOf(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			n += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return n
}

// TestOutputRefused: /out holding anything but dirs and regular files with
// one link and no holes, too many entries, too deep a tree, or files
// claiming more than the limit, fails the node with bad-output and a
// message naming the entry, and nothing of /out reaches the host.
func TestOutputRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		limit  int64
		want   string // in Result.Message
	}{
		{"sparse 10 GiB", "echo ok > /out/good; truncate -s 10G /out/big", 0, "/out/big is a sparse file (10 GiB apparent size, 0 bytes written)"},
		{"sparse hole in the middle", "echo ok > /out/good; dd if=/dev/zero of=/out/holey bs=4096 count=1 seek=1000 2>/dev/null", 0, "/out/holey is a sparse file"},
		{"symlink", "echo ok > /out/good; ln -s /etc/shadow /out/link", 0, "/out/link is a symbolic link"},
		{"dangling symlink in a dir", "mkdir /out/d; ln -s /nowhere /out/d/link", 0, "/out/d/link is a symbolic link"},
		{"fifo", "echo ok > /out/good; mkfifo /out/fifo", 0, "/out/fifo is a fifo"},
		{"socket", "python3 -c \"import socket; socket.socket(socket.AF_UNIX).bind('/out/sock')\"", 0, "/out/sock is a socket"},
		{"hard link", "echo ok > /out/a; ln /out/a /out/b", 0, "/out/a has 2 hard links"},
		{"too many files", "cd /out && seq 1 5000 | xargs touch", 0, "/out holds more than 4096 files and directories"},
		{"too deep", "mkdir -p /out/" + strings.Repeat("d/", 17), 0, "is 17 levels deep, more than 16"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			res := run(t, exec.Spec{Output: out, Args: []string{"/bin/sh", "-c", tc.script},
				Limits: exec.Limits{OutputBytes: tc.limit, Wall: time.Minute}})
			if res.Reason != exec.ReasonBadOutput || !strings.Contains(res.Message, tc.want) {
				t.Fatalf("want bad-output %q, got %s", tc.want, explain(res))
			}
			if !strings.Contains(res.Message, "leave only regular files and directories in /out") {
				t.Errorf("message says nothing of what to do: %q", res.Message)
			}
			if !strings.Contains(string(res.Output), "output refused") {
				t.Errorf("the node's log does not say why its output was refused:\n%s", res.Output)
			}
			if ents, _ := os.ReadDir(out); len(ents) != 0 {
				t.Errorf("refused /out reached the host: %v", ents)
			}
			if du := duOf(t, out); du > 64<<10 {
				t.Errorf("host output dir takes %d bytes", du)
			}
		})
	}
}

// TestOutputRefusedFailedNode: a node that fails and leaves a sparse file
// is reported by its exit, and its /out is still not copied.
func TestOutputRefusedFailedNode(t *testing.T) {
	out := t.TempDir()
	res := run(t, exec.Spec{Output: out, Args: []string{"/bin/sh", "-c", "truncate -s 10G /out/big; exit 3"}})
	if res.Reason != exec.ReasonExit || res.ExitCode != 3 {
		t.Fatalf("want exit 3, got %s", explain(res))
	}
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Errorf("refused /out reached the host: %v", ents)
	}
}

// TestOutputCopiedWhole: files and dirs under the output limit are copied
// whole.
func TestOutputCopiedWhole(t *testing.T) {
	out := t.TempDir()
	res := run(t, exec.Spec{Output: out, Limits: exec.Limits{OutputBytes: 1 << 20},
		Args: []string{"/bin/sh", "-c", "mkdir -p /out/a/b; head -c 524288 /dev/urandom > /out/a/b/x; head -c 320000 /dev/urandom > /out/y"}})
	if res.Reason != exec.ReasonOK {
		t.Fatalf("got %s", explain(res))
	}
	for name, size := range map[string]int64{"a/b/x": 524288, "y": 320000} {
		if fi, err := os.Stat(filepath.Join(out, name)); err != nil || fi.Size() != size {
			t.Errorf("%s: %v %v, want %d bytes", name, fi, err, size)
		}
	}
}

// TestReport: with Spec.Report the node finds a pipe at ReportFD whose
// bytes come back in Result.Report, bounded by MaxReport; without it there
// is no descriptor 3.
func TestReport(t *testing.T) {
	res := run(t, exec.Spec{Report: true, Args: []string{"/bin/sh", "-c", "echo stdout; echo '{\"status\":\"ok\"}' >&3; ls /proc/self/fd | tr '\\n' ' '"}})
	if res.Reason != exec.ReasonOK || string(res.Report) != "{\"status\":\"ok\"}\n" || res.ReportTruncated {
		t.Fatalf("report %q truncated=%v, %s", res.Report, res.ReportTruncated, explain(res))
	}
	// ls's own listing descriptor is 4: 3 is the report pipe.
	if !strings.Contains(string(res.Output), "stdout\n0 1 2 3 4 ") {
		t.Errorf("descriptors: %q", res.Output)
	}
	if strings.Contains(string(res.Output), "status") {
		t.Errorf("the report leaked into the output: %q", res.Output)
	}

	res = run(t, exec.Spec{Report: true, Args: py(`import os; os.write(3, b"x" * (1 << 20))`)})
	if res.Reason != exec.ReasonOK || len(res.Report) != exec.MaxReport || !res.ReportTruncated {
		t.Fatalf("1 MiB report: %d bytes truncated=%v, %s", len(res.Report), res.ReportTruncated, explain(res))
	}

	// A background child holding the pipe dies with the node: the report
	// ends there.
	res = run(t, exec.Spec{Report: true, Args: []string{"/bin/sh", "-c", "(sleep 987655; echo late >&3) & echo early >&3"}})
	if res.Reason != exec.ReasonOK || string(res.Report) != "early\n" {
		t.Fatalf("report %q, %s", res.Report, explain(res))
	}

	res = run(t, exec.Spec{Args: []string{"/bin/sh", "-c", "echo x >&3"}})
	if res.Reason != exec.ReasonExit || len(res.Report) != 0 {
		t.Fatalf("without Report, fd 3 worked: %q %s", res.Report, explain(res))
	}
}

// TestReportWithInitBinary: with weir-sandbox-init as the init (which
// takes descriptor 3 itself), the report pipe still reaches the node as
// descriptor 3 and nothing else is open.
func TestReportWithInitBinary(t *testing.T) {
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
	s, err := exec.New(exec.Config{StateDir: t.TempDir(), InitBinary: bin})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res, err := s.Run(context.Background(), exec.Spec{ID: "report-init", Env: []string{"PATH=/bin:/usr/bin"}, Report: true,
		Args: []string{"/bin/sh", "-c", "echo reported >&3; ls /proc/self/fd | tr '\\n' ' '"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != exec.ReasonOK || string(res.Report) != "reported\n" || string(res.Output) != "0 1 2 3 4 " {
		t.Fatalf("report %q, %s", res.Report, explain(res))
	}
}
