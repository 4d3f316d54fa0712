package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/gitserver"
)

// The admin commands (weir data, import, user and rule) run two ways, with
// one implementation each:
//
//	offline   weir data --data DIR ...           the database opened directly
//	                                             (Pebble: only while weir serve
//	                                             is stopped); users.json
//	online    ssh -p 7422 HOST weir data ...     inside the running server, on
//	                                             its stores, for an admin
//	                                             identity (access.IsAdmin)
//
// Both parse the same flags (offline adds --data and the warehouse flags)
// and call the same function with an adminEnv: where to write, and a
// handle on the stores. Whatever moves data goes through the same checks
// either way (dataStores.checkDataWrite: the branch's code ref exists, a
// require-run branch takes no import or merge), and the catalog's
// compare-and-swap makes an online write safe next to a running push.
//
// What an online import may read: a local path is taken relative to the
// server's import folder (--import-dir, default <data>/imports) and opened
// through os.Root there, so ".." and symlinks cannot leave it; the rest of
// the server's disk (its keys, users.json, the database) is out of reach.
// An s3:// source is read with the server's S3 settings, as offline. A
// file may also come on stdin ("-", with --format).

// adminCommand is one admin command, offline and online.
type adminCommand struct {
	name  string
	usage string // printed before the flags
	// db: the command needs the database and the warehouse (data,
	// import); the others need only users.json.
	db bool
	// define registers the command's own flags on fs and returns what
	// runs it on env with the positional arguments.
	define func(fs *flag.FlagSet) func(ctx context.Context, env *adminEnv, pos []string) error
}

// adminCommands are the commands weir serve also runs over SSH.
func adminCommands() []adminCommand {
	return []adminCommand{dataAdmin, importAdmin, userAdmin, ruleAdmin}
}

// adminEnv is what an admin command acts on and writes to.
type adminEnv struct {
	Stdin    io.Reader
	Out, Err io.Writer
	// Online: the command runs inside weir serve, for Identity.
	Online   bool
	Identity access.Identity
	// Users is users.json (the server re-reads it when it changes).
	Users *access.Users
	// stores returns the catalog and the branch rules: offline it opens
	// the database on first use, online it is the server's.
	stores func() (*dataStores, error)
	// sourceS3 is the S3 client for s3:// import sources.
	sourceS3 func() (*s3.Client, error)
	// importDir confines an online import's local paths (see above);
	// empty offline, where a path is any file the caller can read.
	importDir string
	// maxStdin bounds a file sent on stdin, in bytes (0: no bound).
	maxStdin int64
	usage    func()
}

// runOfflineAdmin runs c as "weir <name> [--data DIR] ..." on this
// machine.
func runOfflineAdmin(c adminCommand, args []string) error {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	data := fs.String("data", "./weir-data", "data directory (as given to weir serve)")
	var wf warehouseFlags
	if c.db {
		wf.register(fs)
	}
	run := c.define(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), c.usage)
		fs.PrintDefaults()
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	var st *dataStores
	defer func() {
		if st != nil {
			st.close()
		}
	}()
	env := &adminEnv{
		Stdin: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		Users: access.OpenUsers(filepath.Join(*data, "users.json")),
		stores: func() (*dataStores, error) {
			if st == nil {
				s, err := openOffline(*data, wf)
				if err != nil {
					return nil, offlineError(c.name, err)
				}
				st = s
			}
			return st, nil
		},
		sourceS3: func() (*s3.Client, error) { return sourceS3(wf) },
		usage:    fs.Usage,
	}
	return run(context.Background(), env, pos)
}

// offlineError explains a database the running server holds.
func offlineError(name string, err error) error {
	if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK) || strings.Contains(err.Error(), "lock") {
		return fmt.Errorf("the server is running: use ssh -p 7422 HOST weir %s ... (the same flags, without --data; as an admin: a key of --authorized-keys, a user marked with weir user admin NAME on, or anyone on a loopback listener), or stop weir serve first (the database is locked: %v)", name, err)
	}
	return err
}

// mountAdmin registers the admin commands on the SSH server: "ssh ...
// weir data|import|user|rule ...", for admin identities only.
func (a *serveApp) mountAdmin() error {
	if a.SSH == nil {
		return nil
	}
	importDir := a.Config.importDir
	if importDir == "" {
		importDir = filepath.Join(a.DataDir, "imports")
	}
	if err := os.MkdirAll(importDir, 0o700); err != nil {
		return fmt.Errorf("--import-dir: %w", err)
	}
	for _, c := range adminCommands() {
		a.SSH.Commands[c.name] = a.adminSSH(c, importDir)
	}
	return nil
}

// adminSSH is c as an SSH command of the running server.
func (a *serveApp) adminSSH(c adminCommand, importDir string) gitserver.SSHCommand {
	return func(ctx context.Context, req *gitserver.SSHRequest) int {
		log := a.Logger.With("command", c.name, "identity", string(req.Identity))
		if !a.SSHAccess.IsAdmin(req.Identity) {
			log.Warn("admin command refused: not an admin")
			fmt.Fprintf(req.Stderr, "weir %s: permission denied: admin only (%s is not an admin; an admin runs weir user admin NAME on, or the server's --authorized-keys lists the key)\n", c.name, req.Identity)
			return 1
		}
		fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
		fs.SetOutput(req.Stderr)
		run := c.define(fs)
		fs.Usage = func() {
			fmt.Fprint(req.Stderr, strings.Replace(c.usage, " [--data DIR]", "", 1))
			fs.PrintDefaults()
		}
		pos, err := parseInterleaved(fs, req.Args[1:])
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if err != nil {
			hint := ""
			if strings.Contains(err.Error(), "-data") || strings.Contains(err.Error(), "-warehouse") || strings.Contains(err.Error(), "-s3-") {
				hint = " (over SSH the command runs on the server's own database and warehouse: drop --data, --warehouse and --s3-*)"
			}
			fmt.Fprintf(req.Stderr, "weir %s: %v%s\n", c.name, err, hint)
			return 2
		}
		env := &adminEnv{
			Stdin: req.Stdin, Out: req.Stdout, Err: req.Stderr,
			Online: true, Identity: req.Identity,
			Users: a.Access.Users(),
			stores: func() (*dataStores, error) {
				return &dataStores{cat: a.Catalog, rules: a.Access, close: func() error { return nil }}, nil
			},
			sourceS3:  func() (*s3.Client, error) { return sourceS3(a.Config.warehouse) },
			importDir: importDir,
			maxStdin:  maxStdinImport,
			usage:     fs.Usage,
		}
		sub := ""
		if len(pos) > 0 {
			sub = pos[0]
		}
		if err := run(ctx, env, pos); err != nil {
			log.Info("admin command failed", "sub", sub, "err", err)
			fmt.Fprintf(req.Stderr, "weir %s: %s\n", c.name, a.Catalog.Redact(err.Error()))
			return 1
		}
		log.Info("admin command", "sub", sub)
		return 0
	}
}

// maxStdinImport bounds a file an online import reads from stdin.
const maxStdinImport = 4 << 30
