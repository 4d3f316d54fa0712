package exec

import (
	"context"
	"fmt"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/weir-dev/weir"
)

// InitVersionArg asks weir-sandbox-init for the fingerprint of its
// sources: "weir-sandbox-init version".
const InitVersionArg = "version"

// InitVersionLine is what weir-sandbox-init prints for InitVersionArg.
func InitVersionLine(sources string) string { return "weir-sandbox-init sources " + sources }

// ErrStaleInit is an init binary built from other sources than the running
// server: it would run sandboxes with another exec than the server's.
var ErrStaleInit = fmt.Errorf("exec: weir-sandbox-init was not built from this server's sources")

// findInitBinary returns weir-sandbox-init next to exe, the running
// binary, or "" when there is none. One built from other sources than exe
// is refused (ErrStaleInit) rather than used: it was left there by an
// older build. (Config.InitBinary, when given, is used as it is.)
func findInitBinary(exe string) (string, error) {
	cand := filepath.Join(filepath.Dir(exe), "weir-sandbox-init")
	if _, err := os.Stat(cand); err != nil {
		return "", nil
	}
	return cand, checkInitBinary(cand)
}

// checkInitBinary runs "bin version" and compares its fingerprint with the
// one this binary was built with (weir.InitSources).
func checkInitBinary(bin string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := osexec.CommandContext(ctx, bin, InitVersionArg)
	cmd.Env = []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	out, err := cmd.Output()
	want := InitVersionLine(weir.InitSources())
	if got := strings.TrimSpace(string(out)); err != nil || got != want {
		return fmt.Errorf("%w: %s answers %q to %q, want %q; build them together: go build -o bin/ ./cmd/weir ./cmd/weir-node ./exec/cmd/weir-sandbox-init",
			ErrStaleInit, bin, clip(got, 120), InitVersionArg, want)
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
