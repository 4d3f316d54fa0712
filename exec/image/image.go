package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FormatVersion is the build format: bump it when what a build puts in a
// runtime changes, so that the same inputs build anew.
const FormatVersion = 3

// SourceDateEpoch is the SOURCE_DATE_EPOCH of every build (2024-01-01):
// timestamps in the image do not depend on when it was built.
const SourceDateEpoch = 1704067200

// Defaults of Inputs.
const (
	DefaultSuite  = "bookworm"
	DefaultMirror = "http://deb.debian.org/debian"
)

// InfoPath is where a runtime's own description sits inside its rootfs,
// for code in the sandbox (a model's error about a missing module).
const InfoPath = "/etc/weir/runtime.json"

// Errors.
var (
	ErrBadInput = errors.New("image: bad input")
	ErrUnknown  = errors.New("image: unknown runtime")
	ErrBuild    = errors.New("image: build failed")
)

// Inputs are what a runtime is built from.
type Inputs struct {
	Suite  string   `json:"suite"`            // Debian suite (default bookworm)
	Debian []string `json:"debian"`           // Debian packages besides python3
	Wheels []Wheel  `json:"wheels,omitempty"` // wheel files from a local folder
	Pip    []string `json:"pip,omitempty"`    // requirements pip installs (default: every wheel)
	Index  string   `json:"index,omitempty"`  // package index URL for pip
	Format int      `json:"format"`           // FormatVersion
}

// Wheel is one wheel file of Inputs: its name and the sha256 of its bytes.
type Wheel struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256"`
	path   string
}

// Info is /etc/weir/runtime.json inside a rootfs (InfoPath).
type Info struct {
	Python   string            `json:"python"`   // "3.11.2"
	Packages map[string]string `json:"packages"` // Python distribution -> version
	Debian   []string          `json:"debian"`   // the Debian packages asked for
}

// Manifest describes a built runtime; it sits beside its rootfs.
type Manifest struct {
	Hash         string    `json:"hash"`
	Inputs       Inputs    `json:"inputs"`
	Mirror       string    `json:"mirror"`
	Built        time.Time `json:"built"`
	BuildSeconds float64   `json:"build_seconds"`
	SizeBytes    int64     `json:"size_bytes"`
	Info
}

// Request is what weir runtime build asks for.
type Request struct {
	Name   string
	Suite  string
	Mirror string
	Debian []string
	Wheels string // folder of .whl files, or ""
	Pip    []string
	Index  string
}

var (
	nameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)
	debRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9+.-]{1,100}$`)
	suiteRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,40}$`)
	pipRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,100}(==[A-Za-z0-9._+!-]{1,40})?$`)
	wheelRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+!-]{0,200}\.whl$`)
)

// ValidName says whether name can name a runtime (the same rule as exec's
// and the pipeline's).
func ValidName(name string) bool { return nameRE.MatchString(name) && name != "host" }

// inputs checks r and turns it into Inputs (hashing the wheels).
func (r Request) inputs() (Inputs, error) {
	in := Inputs{Suite: r.Suite, Format: FormatVersion, Index: r.Index}
	if in.Suite == "" {
		in.Suite = DefaultSuite
	}
	if !ValidName(r.Name) {
		return in, fmt.Errorf("%w: runtime name %q: use lower case letters, digits, '_', '.', '-' (not \"host\")", ErrBadInput, r.Name)
	}
	if !suiteRE.MatchString(in.Suite) {
		return in, fmt.Errorf("%w: suite %q is not a Debian suite name (bookworm, trixie...)", ErrBadInput, in.Suite)
	}
	deb := map[string]bool{"python3": true}
	for _, p := range r.Debian {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		if !debRE.MatchString(p) {
			return in, fmt.Errorf("%w: %q is not a Debian package name", ErrBadInput, p)
		}
		deb[p] = true
	}
	in.Debian = slices.Sorted(maps.Keys(deb))
	for _, p := range r.Pip {
		if !pipRE.MatchString(p) {
			return in, fmt.Errorf("%w: %q is not a pip requirement (NAME or NAME==VERSION)", ErrBadInput, p)
		}
		in.Pip = append(in.Pip, p)
	}
	sort.Strings(in.Pip)
	in.Pip = slices.Compact(in.Pip)
	if r.Index != "" {
		u, err := url.Parse(r.Index)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return in, fmt.Errorf("%w: --index %q is not an http(s) URL", ErrBadInput, r.Index)
		}
		if len(in.Pip) == 0 {
			return in, fmt.Errorf("%w: --index needs the packages to install from it (--pip name,name==1.2)", ErrBadInput)
		}
	}
	if r.Wheels != "" {
		ents, err := os.ReadDir(r.Wheels)
		if err != nil {
			return in, fmt.Errorf("%w: --wheels: %v", ErrBadInput, err)
		}
		for _, e := range ents {
			if !strings.HasSuffix(e.Name(), ".whl") {
				continue
			}
			if !e.Type().IsRegular() || !wheelRE.MatchString(e.Name()) {
				return in, fmt.Errorf("%w: --wheels: %s is not a plain wheel file", ErrBadInput, e.Name())
			}
			p := filepath.Join(r.Wheels, e.Name())
			sum, err := fileSHA256(p)
			if err != nil {
				return in, fmt.Errorf("%w: --wheels: %v", ErrBadInput, err)
			}
			in.Wheels = append(in.Wheels, Wheel{Name: e.Name(), SHA256: sum, path: p})
		}
		if len(in.Wheels) == 0 {
			return in, fmt.Errorf("%w: --wheels %s holds no .whl files", ErrBadInput, r.Wheels)
		}
	}
	return in, nil
}

// Hash is the content hash of in: the name of its folder in the store.
func (in Inputs) Hash() string {
	b, _ := json.Marshal(in)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:10])
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Store is the runtimes of one data dir (<data>/runtimes).
type Store struct {
	Dir string
}

// Open returns the store of data dir data.
func Open(data string) *Store { return &Store{Dir: filepath.Join(data, "runtimes")} }

// Entry is one named runtime of the store.
type Entry struct {
	Name     string
	Rootfs   string
	Manifest Manifest
}

func (s *Store) namesFile() string { return filepath.Join(s.Dir, "names.json") }

// names reads names.json (empty if there is none).
func (s *Store) names() (map[string]string, error) {
	b, err := os.ReadFile(s.namesFile())
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("image: %s: %w", s.namesFile(), err)
	}
	return m, nil
}

// writeNames replaces names.json atomically.
func (s *Store) writeNames(m map[string]string) error {
	b, _ := json.MarshalIndent(m, "", "  ")
	return writeAtomic(s.namesFile(), append(b, '\n'))
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// lock takes the store's exclusive lock (builds and removals).
func (s *Store) lock() (func(), error) {
	if err := os.MkdirAll(s.Dir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.Dir, ".lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// List returns the named runtimes, by name. A name whose folder is gone is
// listed with an empty Rootfs.
func (s *Store) List() ([]Entry, error) {
	names, err := s.names()
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, name := range slices.Sorted(maps.Keys(names)) {
		e := Entry{Name: name}
		dir := filepath.Join(s.Dir, names[name])
		if b, err := os.ReadFile(filepath.Join(dir, "manifest.json")); err == nil {
			if json.Unmarshal(b, &e.Manifest) == nil {
				e.Rootfs = filepath.Join(dir, "rootfs")
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// Rootfs returns name -> rootfs folder of every named, complete runtime:
// what weir serve registers.
func (s *Store) Rootfs() (map[string]string, error) {
	es, err := s.List()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, e := range es {
		if e.Rootfs != "" {
			m[e.Name] = e.Rootfs
		}
	}
	return m, nil
}

// Remove forgets name and deletes its runtime unless another name shares
// it. It refuses an unknown name.
func (s *Store) Remove(name string) (removedHash string, err error) {
	unlock, err := s.lock()
	if err != nil {
		return "", err
	}
	defer unlock()
	names, err := s.names()
	if err != nil {
		return "", err
	}
	h, ok := names[name]
	if !ok {
		have := strings.Join(slices.Sorted(maps.Keys(names)), ", ")
		if have == "" {
			have = "none built"
		}
		return "", fmt.Errorf("%w %q (built: %s; see weir runtime ls)", ErrUnknown, name, have)
	}
	delete(names, name)
	if err := s.writeNames(names); err != nil {
		return "", err
	}
	for _, other := range names {
		if other == h {
			return "", nil // still named
		}
	}
	// Rename first: a crash mid-removal leaves a .build- leftover, never
	// a half-deleted runtime under its hash.
	gone := filepath.Join(s.Dir, ".build-rm-"+h)
	if err := os.Rename(filepath.Join(s.Dir, h), gone); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	return h, os.RemoveAll(gone)
}

// Result is what Build did.
type Result struct {
	Manifest Manifest
	Rootfs   string
	Existed  bool // the same inputs were built before: nothing was built
}

// Build builds the runtime r asks for, unless one of the same inputs is in
// the store, and names it r.Name (replacing what the name meant before).
// mmdebstrap's progress goes to log.
func (s *Store) Build(ctx context.Context, r Request, log io.Writer) (*Result, error) {
	in, err := r.inputs()
	if err != nil {
		return nil, err
	}
	mirror := r.Mirror
	if mirror == "" {
		mirror = DefaultMirror
	}
	if u, err := url.Parse(mirror); err != nil || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "file") {
		return nil, fmt.Errorf("%w: --mirror %q is not an http(s) or file URL", ErrBadInput, mirror)
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	hash := in.Hash()
	final := filepath.Join(s.Dir, hash)
	res := &Result{Rootfs: filepath.Join(final, "rootfs")}
	if b, err := os.ReadFile(filepath.Join(final, "manifest.json")); err == nil && json.Unmarshal(b, &res.Manifest) == nil {
		res.Existed = true
		return res, s.name(r.Name, hash)
	}
	// Leftovers of a crashed build or removal (we hold the lock).
	if old, _ := filepath.Glob(filepath.Join(s.Dir, ".build-*")); len(old) > 0 {
		for _, o := range old {
			os.RemoveAll(o)
		}
	}
	os.RemoveAll(final)
	if _, err := osexec.LookPath("mmdebstrap"); err != nil {
		return nil, fmt.Errorf("%w: mmdebstrap is not installed (apt-get install mmdebstrap)", ErrBuild)
	}
	tmp, err := os.MkdirTemp(s.Dir, ".build-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil { // apt's _apt user downloads into it
		return nil, err
	}
	start := time.Now()
	rootfs := filepath.Join(tmp, "rootfs")
	if err := mmdebstrap(ctx, in, r.Wheels, mirror, tmp, rootfs, log); err != nil {
		return nil, err
	}
	m := Manifest{Hash: hash, Inputs: in, Mirror: mirror, Built: time.Now().UTC().Truncate(time.Second)}
	b, err := os.ReadFile(filepath.Join(rootfs, InfoPath))
	if err != nil {
		return nil, fmt.Errorf("%w: the build wrote no %s: %v", ErrBuild, InfoPath, err)
	}
	if err := json.Unmarshal(b, &m.Info); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBuild, InfoPath, err)
	}
	m.SizeBytes = du(rootfs)
	m.BuildSeconds = time.Since(start).Round(100 * time.Millisecond).Seconds()
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := writeAtomic(filepath.Join(tmp, "manifest.json"), append(mb, '\n')); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return nil, err
	}
	res.Manifest = m
	return res, s.name(r.Name, hash)
}

// name points name at hash in names.json.
func (s *Store) name(name, hash string) error {
	names, err := s.names()
	if err != nil {
		return err
	}
	names[name] = hash
	return s.writeNames(names)
}

// infoScript runs in the new rootfs's python3 and prints Info.
const infoScript = `import importlib.metadata as md, json, platform, sys
pk = {}
for d in md.distributions():
    n = d.metadata["Name"]
    if n:
        pk[n] = d.version
json.dump({"python": platform.python_version(), "packages": dict(sorted(pk.items())), "debian": json.loads(sys.argv[1])}, sys.stdout, indent=1, sort_keys=True)
print()
`

// mmdebstrap builds the rootfs: the essential variant with python3 and
// in.Debian, pip (removed again) for wheels or an index, and InfoPath.
func mmdebstrap(ctx context.Context, in Inputs, wheelDir, mirror, tmp, rootfs string, log io.Writer) error {
	script := filepath.Join(tmp, "info.py")
	if err := os.WriteFile(script, []byte(infoScript), 0o644); err != nil {
		return err
	}
	include := slices.Clone(in.Debian)
	usePip := len(in.Wheels) > 0 || in.Index != ""
	if usePip {
		include = append(include, "python3-pip")
	}
	debJSON, _ := json.Marshal(in.Debian)
	args := []string{"--variant=essential", "--include=" + strings.Join(include, ","),
		"--customize-hook=upload " + script + " /tmp/weir-info.py"}
	if usePip {
		var reqs []string
		pipArgs := []string{"--no-cache-dir", "--break-system-packages", "--disable-pip-version-check"}
		if len(in.Wheels) > 0 {
			wd, err := filepath.Abs(wheelDir)
			if err != nil {
				return err
			}
			args = append(args, "--customize-hook=mkdir -p \"$1/tmp/weir-wheels\"", "--customize-hook=sync-in "+wd+" /tmp/weir-wheels")
			pipArgs = append(pipArgs, "--find-links", "/tmp/weir-wheels")
			if len(in.Pip) == 0 {
				for _, w := range in.Wheels {
					reqs = append(reqs, "/tmp/weir-wheels/"+w.Name)
				}
			}
		}
		if in.Index != "" {
			pipArgs = append(pipArgs, "--index-url", in.Index)
		} else {
			pipArgs = append(pipArgs, "--no-index")
		}
		reqs = append(reqs, in.Pip...)
		args = append(args,
			"--customize-hook=chroot \"$1\" python3 -m pip install "+shellJoin(append(pipArgs, reqs...)),
			"--customize-hook=rm -rf \"$1/tmp/weir-wheels\"",
			"--customize-hook=chroot \"$1\" dpkg --purge python3-pip")
	}
	args = append(args,
		"--customize-hook=mkdir -p \"$1/etc/weir\"",
		"--customize-hook=chroot \"$1\" python3 /tmp/weir-info.py "+shellJoin([]string{string(debJSON)})+" > \"$1"+InfoPath+"\"",
		"--customize-hook=rm -f \"$1/tmp/weir-info.py\"",
		"--customize-hook=find \"$1/usr\" -name __pycache__ -type d -prune -exec rm -rf {} +",
		in.Suite, rootfs, mirror)
	cmd := osexec.CommandContext(ctx, "mmdebstrap", args...)
	cmd.Env = append(os.Environ(), "SOURCE_DATE_EPOCH="+strconv.Itoa(SourceDateEpoch))
	cmd.Stdout, cmd.Stderr = log, log
	// Cancelled (^C): mmdebstrap is asked to stop, so that it unmounts
	// and cleans up what it made, and killed only if it does not.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = time.Minute
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: mmdebstrap %s: %v (its output above says why)", ErrBuild, in.Suite, err)
	}
	// Every mtime after the epoch is clamped to it (mmdebstrap's own
	// clean-up and /dev come after its hooks): two builds of the same
	// inputs from the same archive state are the same files and times.
	epoch := "@" + strconv.Itoa(SourceDateEpoch)
	clamp := osexec.CommandContext(ctx, "sh", "-c", `find "$1" -newermt "$2" -print0 | xargs -0r touch --no-dereference --date="$2"`, "clamp", rootfs, epoch)
	clamp.Stdout, clamp.Stderr = log, log
	if err := clamp.Run(); err != nil {
		return fmt.Errorf("%w: clamp mtimes to SOURCE_DATE_EPOCH: %v", ErrBuild, err)
	}
	return nil
}

// shellJoin quotes words for sh.
func shellJoin(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}

// du is the bytes of the regular files under dir.
func du(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
