package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestStorageLogsThroughLogLevel: Pebble's own log lines reach the
// server's logger, so --log-level governs them: at debug they are there,
// as structured lines tagged component=pebble; at the default level they
// are not; and nothing the storage layer says bypasses the handed-down
// logger (every stderr line is a slog line).
func TestStorageLogsThroughLogLevel(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	debug := startWeir(t, data, "--log-level", "debug")
	pushOne(t, debug, "first")
	debug.Stop()
	log := debug.Log.String()
	if !strings.Contains(log, "component=pebble") {
		t.Fatalf("no Pebble line in the debug log:\n%s", log)
	}
	checkSlogLines(t, log)

	info := startWeir(t, data) // --log-level info, the default; reopens the same database
	pushOne(t, info, "second")
	info.Stop()
	if log := info.Log.String(); strings.Contains(log, "component=pebble") {
		t.Fatalf("Pebble's debug lines bypass --log-level info:\n%s", log)
	} else {
		checkSlogLines(t, log)
	}
}

// checkSlogLines fails on a stderr line that is not a slog text line.
func checkSlogLines(t *testing.T, log string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line != "" && !strings.HasPrefix(line, "time=") {
			t.Fatalf("a stderr line bypasses the server's logger: %q\nwhole log:\n%s", line, log)
		}
	}
}

// pushOne pushes a fresh repo of two commits to s over HTTP as repo and checks
// the server holds it.
func pushOne(t *testing.T, s *weirServer, repo string) {
	t.Helper()
	work := newWorkRepo(t, 2)
	url := s.HTTP + "/" + repo + ".git"
	git(t, work, "push", "-q", url, "main")
	if got, want := lsRemote(t, url)["refs/heads/main"], revParse(t, work, "HEAD"); got != want {
		t.Fatalf("server main = %q, want %q", got, want)
	}
}
