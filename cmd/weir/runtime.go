package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/weir-dev/weir/exec/image"
	"golang.org/x/sys/unix"
)

const runtimeUsage = `usage: weir runtime <subcommand> [--data DIR] ...

  weir runtime build NAME --debian pkg1,pkg2 [--wheels DIR] [--pip a,b==1.2]
                     [--index URL] [--suite bookworm] [--mirror URL]
                          build a runtime (a root filesystem with python3 and
                          these Debian packages, plus wheels from DIR or
                          packages from a pip index) with mmdebstrap, and name
                          it NAME; the same inputs again are a no-op
  weir runtime ls         the named runtimes: hash, size, python, packages
  weir runtime rm NAME    forget NAME and delete its runtime (unless another
                          name shares it); the server must be stopped

A runtime is stored under <data>/runtimes/<hash>/ by a content hash of its
inputs; weir serve registers every named runtime when it starts, and
pipelines choose one with runtime = "NAME" in weir.toml or
"# weir: runtime = NAME" in a Python model's header. Building is the only
step that reaches a package source (the Debian mirror, the pip index);
nodes never have a network. After rm and a restart, a push whose pipeline
names the runtime is refused at plan time: unknown runtime "NAME"
(available: ...).

flags:
`

func runRuntime(args []string) error {
	fs := flag.NewFlagSet("runtime", flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	debian := fs.String("debian", "", "build: comma-separated Debian packages (python3 is always included)")
	wheels := fs.String("wheels", "", "build: a folder of .whl files pip installs (offline: --no-index --find-links)")
	pip := fs.String("pip", "", "build: comma-separated pip requirements (NAME or NAME==VERSION) to install from --wheels or --index (default with --wheels: every wheel)")
	index := fs.String("index", "", "build: a pip package index URL (--index-url) for --pip")
	suite := fs.String("suite", image.DefaultSuite, "build: Debian suite")
	mirror := fs.String("mirror", image.DefaultMirror, "build: Debian mirror URL")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), runtimeUsage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if len(pos) == 0 {
		fs.Usage()
		return errors.New("missing subcommand")
	}
	store := image.Open(*data)
	switch pos[0] {
	case "build":
		if len(pos) != 2 {
			return errors.New("usage: weir runtime build NAME --debian pkg1,pkg2 [--wheels DIR] [--pip a,b] [--index URL] [--suite S] [--mirror URL]")
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		res, err := store.Build(ctx, image.Request{Name: pos[1], Suite: *suite, Mirror: *mirror,
			Debian: splitList(*debian), Wheels: *wheels, Pip: splitList(*pip), Index: *index}, os.Stderr)
		if err != nil {
			return err
		}
		m := res.Manifest
		if res.Existed {
			fmt.Printf("runtime %s: already built (%s, same inputs): nothing to do\n", pos[1], m.Hash)
		} else {
			fmt.Printf("runtime %s: built %s in %.1fs\n", pos[1], m.Hash, m.BuildSeconds)
		}
		fmt.Printf("  rootfs   %s\n  size     %s\n  python   %s\n  packages %s\n", res.Rootfs, sizeString(m.SizeBytes), m.Python, packagesString(m.Packages))
		fmt.Printf("weir serve --data %s registers it when it (next) starts; pipelines choose it with runtime = %q\n", *data, pos[1])
	case "ls":
		if len(pos) != 1 {
			return errors.New("usage: weir runtime ls")
		}
		es, err := store.List()
		if err != nil {
			return err
		}
		fmt.Printf("%-12s %-20s %9s %-8s %s\n", "NAME", "HASH", "SIZE", "PYTHON", "PACKAGES")
		fmt.Printf("%-12s %-20s %9s %-8s %s\n", "host", "-", "-", "-", "the host's /usr (built in)")
		for _, e := range es {
			if e.Rootfs == "" {
				fmt.Printf("%-12s %-20s %9s %-8s %s\n", e.Name, "?", "-", "-", "(its folder is missing: build it again)")
				continue
			}
			m := e.Manifest
			fmt.Printf("%-12s %-20s %9s %-8s %s\n", e.Name, m.Hash, sizeString(m.SizeBytes), m.Python, packagesString(m.Packages))
		}
	case "rm":
		if len(pos) != 2 {
			return errors.New("usage: weir runtime rm NAME")
		}
		if serverRunning(*data) {
			return fmt.Errorf("a weir serve is running on %s and may be running nodes in %s: stop it, then remove the runtime", *data, pos[1])
		}
		h, err := store.Remove(pos[1])
		if err != nil {
			return err
		}
		if h != "" {
			fmt.Printf("runtime %s removed (%s deleted); pipelines that name it are refused at plan until a runtime of that name is built again\n", pos[1], h)
		} else {
			fmt.Printf("runtime %s removed (its files stay: another name shares them)\n", pos[1])
		}
	default:
		fs.Usage()
		return fmt.Errorf("unknown subcommand %q", pos[0])
	}
	return nil
}

// serverRunning says whether a process holds the Pebble lock of data (a
// weir serve, or an offline command, is using it).
func serverRunning(data string) bool {
	f, err := os.OpenFile(filepath.Join(data, "pebble", "LOCK"), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return false
	}
	return lk.Type != unix.F_UNLCK
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// packagesString is "name version, ..." of the Python distributions a
// runtime has, the pip machinery left out.
func packagesString(pk map[string]string) string {
	var out []string
	for n, v := range pk {
		switch strings.ToLower(n) {
		case "pip", "setuptools", "wheel":
			continue
		}
		out = append(out, n+" "+v)
	}
	sort.Strings(out)
	if len(out) == 0 {
		return "(standard library only)"
	}
	return strings.Join(out, ", ")
}

func sizeString(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%d KiB", n>>10)
}
