package exec

import (
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"

	"github.com/opencontainers/runc/libcontainer/configs"
	"golang.org/x/sys/unix"
)

// LibDir is where a sandbox of a registered runtime finds the host's
// program loader and the shared libraries of the sandbox's own binaries
// (the shim and the runner), each bound read-only. They are started as
// "<LibDir>/<loader> --library-path LibDir <binary> args...", so they run
// whatever C library the image has, or none; the programs they start (a
// node's python3) use the image's own loader and libraries, never these.
//
// Why not link them statically instead: weir-node links DuckDB, which
// links statically against glibc only with getpwuid, getaddrinfo and
// dlopen left to load the glibc NSS modules of whatever image it runs in
// (the linker warns so), a hazard in an image with another glibc or none;
// the loader way needs no change to how weir-node and the shim are built,
// and starts them as fast (weir-node version: 256 ms through the loader,
// 276 ms directly, 50 runs each on a loaded 2-core machine: noise).
const LibDir = "/weir/lib"

// sandboxOwned are the top-level names the sandbox supplies itself; an
// image's own entries of these names are never bound.
var sandboxOwned = map[string]bool{"proc": true, "dev": true, "tmp": true, "in": true, "out": true, "sys": true, "weir": true}

// runtimeNameRE is what a registered runtime's name must match: it names a
// folder under the state dir and appears in weir.toml and model headers.
var runtimeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// rootfs is what a sandbox of one runtime is built from: a skeleton root
// under the state dir (empty mount points, the image's top-level symlinks)
// and the read-only binds that fill it.
type rootfs struct {
	skeleton string
	mounts   []*configs.Mount
	// loader is the host loader's path inside the sandbox (under LibDir)
	// through which the shim and the runner start; "" starts them
	// directly (the host runtime, or static binaries).
	loader string
}

// libs are the host files an image runtime binds under LibDir: the
// program loader and the shared libraries (transitively) of the given
// ELF binaries, by the name they are bound as. interp is "" when every
// binary is static.
type libs struct {
	interp string            // name of the loader under LibDir
	files  map[string]string // name under LibDir -> host path
}

// libSearchDirs are where sharedLibs looks for a DT_NEEDED name.
func libSearchDirs() []string {
	triplet := map[string]string{"amd64": "x86_64-linux-gnu", "arm64": "aarch64-linux-gnu"}[goruntime.GOARCH]
	dirs := []string{}
	if triplet != "" {
		dirs = append(dirs, "/lib/"+triplet, "/usr/lib/"+triplet)
	}
	return append(dirs, "/lib64", "/usr/lib64", "/lib", "/usr/lib", "/usr/local/lib")
}

// sharedLibs finds the loader and the shared libraries bins need.
func sharedLibs(bins ...string) (libs, error) {
	l := libs{files: map[string]string{}}
	var queue []string
	var machine elf.Machine
	for _, bin := range bins {
		f, err := elf.Open(bin)
		if err != nil {
			return l, fmt.Errorf("read %s: %w", bin, err)
		}
		machine = f.Machine
		for _, p := range f.Progs {
			if p.Type != elf.PT_INTERP {
				continue
			}
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				f.Close()
				return l, fmt.Errorf("read %s: interpreter: %w", bin, err)
			}
			interp := strings.TrimRight(string(b), "\x00")
			host, err := filepath.EvalSymlinks(interp)
			if err != nil {
				f.Close()
				return l, fmt.Errorf("%s: its loader %s: %w", bin, interp, err)
			}
			l.interp = filepath.Base(interp)
			l.files[l.interp] = host
		}
		needed, err := f.ImportedLibraries()
		f.Close()
		if err != nil {
			return l, fmt.Errorf("read %s: %w", bin, err)
		}
		queue = append(queue, needed...)
	}
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		if _, done := l.files[name]; done || strings.Contains(name, "/") {
			continue
		}
		host, needed, err := findLib(name, machine)
		if err != nil {
			return l, err
		}
		l.files[name] = host
		queue = append(queue, needed...)
	}
	return l, nil
}

// findLib finds the shared library name for machine in libSearchDirs and
// returns its resolved path and the libraries it needs.
func findLib(name string, machine elf.Machine) (string, []string, error) {
	for _, d := range libSearchDirs() {
		p, err := filepath.EvalSymlinks(filepath.Join(d, name))
		if err != nil {
			continue
		}
		f, err := elf.Open(p)
		if err != nil {
			continue
		}
		needed, err := f.ImportedLibraries()
		m := f.Machine
		f.Close()
		if err != nil || m != machine {
			continue
		}
		return p, needed, nil
	}
	return "", nil, fmt.Errorf("shared library %s (needed by the sandbox's shim or runner) is in none of %s", name, strings.Join(libSearchDirs(), ", "))
}

// buildImageRoot (re)creates the skeleton root of a registered runtime at
// root: mount points for what the sandbox supplies (/proc, /dev, /tmp, /in,
// /out, /sys, /weir/bin/..., /weir/lib/...), one for each of the image's
// top-level dirs and files, and copies of its top-level symlinks. It
// returns the read-only binds that fill the mount points. Nothing is ever
// written into image.
func buildImageRoot(root, image string, l libs) (*rootfs, error) {
	ents, err := os.ReadDir(image)
	if err != nil {
		return nil, err
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	for _, d := range []string{"proc", "dev", "tmp", "in", "out", "sys", "weir/bin", "weir/lib"} {
		if err := os.MkdirAll(filepath.Join(tmp, d), 0o755); err != nil {
			return nil, err
		}
	}
	files := []string{shimPath, seccompPath, RunnerPath}
	for _, name := range sortedKeys(l.files) {
		files = append(files, LibDir+"/"+name)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f), nil, 0o755); err != nil {
			return nil, err
		}
	}
	const roBind = unix.MS_BIND | unix.MS_REC | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV
	rf := &rootfs{skeleton: root}
	for _, e := range ents {
		name := e.Name()
		if sandboxOwned[name] {
			continue
		}
		src := filepath.Join(image, name)
		fi, err := os.Lstat(src)
		if err != nil {
			return nil, err
		}
		dst := filepath.Join(tmp, name)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(src)
			if err != nil {
				return nil, err
			}
			if err := os.Symlink(target, dst); err != nil {
				return nil, err
			}
			continue
		case fi.IsDir():
			err = os.Mkdir(dst, 0o755)
		case fi.Mode().IsRegular():
			err = os.WriteFile(dst, nil, 0o644)
		default:
			continue // sockets, devices, fifos: not part of a runtime
		}
		if err != nil {
			return nil, err
		}
		rf.mounts = append(rf.mounts, &configs.Mount{Source: src, Destination: "/" + name, Device: "bind", Flags: roBind})
	}
	for _, name := range sortedKeys(l.files) {
		rf.mounts = append(rf.mounts, &configs.Mount{Source: l.files[name], Destination: LibDir + "/" + name, Device: "bind", Flags: roBind})
	}
	if l.interp != "" {
		rf.loader = LibDir + "/" + l.interp
	}
	if err := os.RemoveAll(root); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, root); err != nil {
		return nil, err
	}
	return rf, nil
}

// throughLoader is argv started through rf's loader (argv unchanged when
// there is none): the loader maps argv[0] with the libraries under LibDir,
// and the program sees argv as given.
func (rf *rootfs) throughLoader(argv []string) []string {
	if rf.loader == "" {
		return argv
	}
	return append([]string{rf.loader, "--library-path", LibDir}, argv...)
}

// unreadable lists (up to max, and counts) the files and dirs of image a
// node cannot read: a sandbox's ids are unprivileged on the host (with or
// without a user namespace), so an image file is readable only through its
// "others" bits (or an owner of the sandbox's mapped ids).
func unreadable(image string, max int) ([]string, int) {
	var list []string
	n := 0
	filepath.WalkDir(image, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			n++
			if len(list) < max {
				list = append(list, p)
			}
			return nil
		}
		if d.Type()&fs.ModeSymlink != 0 || !(d.IsDir() || d.Type().IsRegular()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		need := fs.FileMode(0o004)
		if d.IsDir() {
			need = 0o005
		}
		if fi.Mode().Perm()&need != need {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid >= userBase && st.Uid < userBase+userSize {
				return nil // owned by a sandbox id
			}
			n++
			if len(list) < max {
				rel, _ := filepath.Rel(image, p)
				list = append(list, "/"+rel)
			}
			if d.IsDir() {
				return fs.SkipDir
			}
		}
		return nil
	})
	sort.Strings(list)
	return list, n
}
