package exec

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// hostDirs are the host paths the host runtime shares, read-only. On
// Debian 12 /bin, /sbin and /lib* are symlinks into /usr; the skeleton
// copies such symlinks instead of binding them.
var hostDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc"}

// buildHostRoot creates the skeleton root of the host runtime once: empty
// mount points for everything the sandbox mounts, and the host's /bin-style
// symlinks. It is shared read-only by every sandbox (libcontainer mounts
// over it in each container's own mount namespace), so nothing may be
// created in it at run time; inputs live under a tmpfs at /in for that
// reason.
func buildHostRoot(root string) error {
	const marker = ".complete-v2" // bump when the layout changes
	if _, err := os.Stat(filepath.Join(root, marker)); err == nil {
		return nil
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	for _, d := range []string{"proc", "dev", "tmp", "in", "out", "sys", "weir/bin"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return err
		}
	}
	for _, f := range []string{shimPath, seccompPath, RunnerPath} {
		if err := os.WriteFile(filepath.Join(tmp, f), nil, 0o755); err != nil {
			return err
		}
	}
	for _, d := range hostDirs {
		fi, err := os.Lstat("/" + d)
		if err != nil {
			continue
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink("/" + d)
			if err != nil {
				return err
			}
			if err := os.Symlink(target, filepath.Join(tmp, d)); err != nil {
				return err
			}
		case fi.IsDir():
			if err := os.Mkdir(filepath.Join(tmp, d), 0o755); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(filepath.Join(tmp, marker), nil, 0o644); err != nil {
		return err
	}
	if err := os.RemoveAll(root); err != nil {
		return err
	}
	return os.Rename(tmp, root)
}

var (
	hostMountsOnce sync.Once
	hostMountList  []string
)

// hostMounts are the read-only binds of the host runtime (computed once).
func hostMounts() []*configs.Mount {
	hostMountsOnce.Do(func() {
		for _, d := range hostDirs {
			if fi, err := os.Lstat("/" + d); err == nil && fi.IsDir() {
				hostMountList = append(hostMountList, "/"+d)
			}
		}
	})
	var ms []*configs.Mount
	for _, d := range hostMountList {
		ms = append(ms, &configs.Mount{Source: d, Destination: d, Device: "bind",
			Flags: unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV})
	}
	return ms
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// maxLine bounds how much of an unterminated line the live stream holds
// back before passing it on anyway.
const maxLine = 64 << 10

// tail keeps the last n bytes written to it and forwards the stream to w
// in whole lines (a partial line waits for its newline, up to maxLine, or
// for flush). Writes arrive from one goroutine (os/exec copies the one pipe
// shared by stdout and stderr), but bytes may be read concurrently.
type tail struct {
	mu      sync.Mutex
	n       int
	buf     []byte
	w       io.Writer
	partial []byte
}

func newTail(n int, w io.Writer) *tail { return &tail{n: n, w: w} }

// Write keeps p's tail and forwards p's complete lines; a failing forward
// stops forwarding, so a slow or broken progress stream never fails the
// node.
func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	if t.w == nil {
		return len(p), nil
	}
	t.partial = append(t.partial, p...)
	cut := bytes.LastIndexByte(t.partial, '\n') + 1
	if cut == 0 && len(t.partial) >= maxLine {
		cut = len(t.partial)
	}
	if cut > 0 {
		t.forward(t.partial[:cut])
		t.partial = append(t.partial[:0], t.partial[cut:]...)
	}
	return len(p), nil
}

// flush forwards what is left of an unterminated last line.
func (t *tail) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.w != nil && len(t.partial) > 0 {
		t.forward(t.partial)
	}
	t.partial = nil
}

func (t *tail) forward(b []byte) {
	if _, err := t.w.Write(b); err != nil {
		t.w = nil
	}
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.buf
	if len(b) > t.n {
		b = b[len(b)-t.n:]
	}
	return append([]byte(nil), b...)
}

// mountsUnder lists mount points at or below dir, deepest first, as the
// calling thread sees them: not /proc/self, which is the main thread's
// view, and the main thread may be one libcontainer's mount-source
// goroutine left wedged in a (dead) container's mount namespace (Go does
// not end the main thread when a goroutine locked to it exits).
func mountsUnder(dir string) ([]string, error) {
	b, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out, nil
}

// unescapeMount undoes mountinfo's octal escapes (\040 for space...).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
