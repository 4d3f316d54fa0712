package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/gc"
	"github.com/weir-dev/weir/gitserver"
	"github.com/weir-dev/weir/hooks/sched"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/metrics"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// serveConfig is every knob of weir serve; each one is a flag.
type serveConfig struct {
	data           string
	httpAddr       string
	sshAddr        string
	authorizedKeys string
	protected      string
	maxPackBytes   int64
	maxObjectBytes int64
	// Push memory: objects.Limits and gitserver.ReceiveLimits.
	maxInflatedBytes  int64
	maxPackObjects    int64
	maxDeltaBaseBytes int64
	maxPushRefs       int
	maxCommandBytes   int
	maxPushes         int
	pushQueueTimeout  time.Duration
	pushIdleTimeout   time.Duration
	assumeRemote      bool
	logLevel          string
	shutdownGrace     time.Duration
	// The tables: where the warehouse is, and what the Iceberg REST
	// catalog hands to readers.
	warehouse       warehouseFlags
	vendCredentials bool
	// The S3 endpoint of the local warehouse.
	s3 s3Flags
	// The pipeline nodes: limits, runtimes, parallelism.
	nodes nodeFlags
	// The run queue: runs at once, queue length, policy, node pool.
	runs runFlags
	// Online admin (admin.go): where an import over SSH may read files.
	importDir string
	// Health and metrics (ops.go): /metrics open to anyone.
	metricsOpen bool
	// Garbage collection: how often, and what it keeps (cmd/weir/gc.go).
	gcEvery time.Duration
	gc      gcFlags
}

func (c *serveConfig) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", "./weir-data", "data directory: Pebble database (pebble/), warehouse (warehouse/), users.json, SSH host key")
	fs.StringVar(&c.httpAddr, "http", "127.0.0.1:7480", "smart HTTP listen address (empty: no HTTP)")
	fs.StringVar(&c.sshAddr, "ssh", "127.0.0.1:7422", "SSH listen address (empty: no SSH)")
	fs.StringVar(&c.authorizedKeys, "authorized-keys", "", "OpenSSH authorized_keys file whose keys may read and write every repo")
	fs.StringVar(&c.protected, "protected", "refs/heads/main", "comma-separated refs (path.Match patterns) that refuse force pushes and deletion")
	fs.Int64Var(&c.maxPackBytes, "max-pack-bytes", 0, "largest pack one push may send, in bytes (0: the default, 1 GiB)")
	fs.Int64Var(&c.maxObjectBytes, "max-object-bytes", 0, "largest single object a push may bring, in bytes (0: the default, 256 MiB)")
	fs.Int64Var(&c.maxInflatedBytes, "max-inflated-bytes", 0, "largest total size of a push's objects once inflated, deltas at the size they declare (0: the default, 2 GiB); refuses delta bombs")
	fs.Int64Var(&c.maxPackObjects, "max-pack-objects", 0, "most objects in one pushed pack (0: the default, 1048576); each costs ~300 bytes of memory while the push is checked")
	fs.Int64Var(&c.maxDeltaBaseBytes, "max-delta-base-bytes", 0, "memory for delta bases, shared by every push being received (0: the default, 256 MiB or --max-object-bytes if larger)")
	fs.IntVar(&c.maxPushRefs, "max-push-refs", 0, fmt.Sprintf("most ref updates in one push (0: the default, %d)", gitserver.DefaultMaxCommands))
	fs.IntVar(&c.maxCommandBytes, "max-command-bytes", 0, "largest command list of one push, push options included, in bytes (0: the default, 1 MiB)")
	fs.IntVar(&c.maxPushes, "max-concurrent-pushes", 0, fmt.Sprintf("most pushes receiving and checking their pack at once; more wait their turn (0: the default, %d)", gitserver.DefaultMaxConcurrent))
	fs.DurationVar(&c.pushQueueTimeout, "push-queue-timeout", gitserver.DefaultPushQueueTimeout, "how long a push waits for its turn before it is refused with 'server busy'")
	fs.DurationVar(&c.pushIdleTimeout, "push-idle-timeout", gitserver.DefaultReadIdleTimeout, "how long a push holding its turn may send nothing before it is cut off")
	fs.BoolVar(&c.assumeRemote, "assume-remote", false, "apply the non-loopback access rules (no anonymous access) even on loopback listeners; for tests")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&c.shutdownGrace, "shutdown-grace", 30*time.Second, "on SIGINT/SIGTERM, how long to let running sessions finish")
	c.warehouse.register(fs)
	fs.BoolVar(&c.vendCredentials, "iceberg-vend-credentials", false,
		"Iceberg REST: hand the server's own S3 keys to every reader allowed to load a table (in LoadTable's config). Off: readers get endpoint, region and addressing only, and use their own credentials")
	c.s3.register(fs)
	c.nodes.register(fs)
	c.runs.register(fs)
	fs.BoolVar(&c.metricsOpen, "metrics-open", false, "serve /metrics to anyone who reaches the HTTP listener (default: open on loopback, admins only elsewhere)")
	fs.StringVar(&c.importDir, "import-dir", "", "online admin: the only folder whose files 'ssh ... weir import' may read by path (default <data>/imports); stdin and s3:// work too")
	fs.DurationVar(&c.gcEvery, "gc-every", time.Hour, "garbage collection: collect every this often while serving (0: never; weir gc collects offline)")
	c.gc.register(fs)
}

// serveApp is everything weir serve builds. newServeApp builds it in one
// order, each step from the ones before it (the composition root):
//
//	logger, data dir
//	storage     Pebble: objects, refs
//	access      users, keys, tokens, rules; --protected
//	metrics     the server's own Prometheus registry (ops.go)
//	git         the Git protocol server
//	catalog     the one catalog of every repo (--warehouse, --s3-*)
//	listeners   HTTP (Git smart HTTP at /) and SSH, each with its own
//	            view of access (anonymous only on loopback)
//	pipelines   weir-node, the sandboxes, the run queue (--runs, ...),
//	            the pipeline hook on git, the SSH query and runs commands
//	iceberg     the Iceberg REST catalog at /iceberg/ on HTTP
//	web         the read-only web view at / and /ui/ on HTTP (web)
//	admin       weir data|import|user|rule over SSH, admins only (admin.go)
//	ops         /healthz and /metrics on HTTP (ops.go)
//
// Nothing is served until run; close releases everything in reverse
// order of acquisition.
type serveApp struct {
	Config    serveConfig
	Logger    *slog.Logger
	DataDir   string // absolute
	Warehouse string // <data>/warehouse, created: the default warehouse (Catalog's is the one --warehouse chooses)
	DB        *pebblekv.DB
	Objects   *objects.Store
	Refs      *refs.DB
	Git       *gitserver.Server
	Catalog   *catalog.Catalog // the one catalog: REST, pipelines and weir query share it
	Access    *access.Access   // shared; listeners use the views below
	// HTTPAccess is the HTTP listener's view of Access; its HTTPIdentity
	// authenticates requests for handlers mounted on Mux.
	HTTPAccess *access.Access
	SSHAccess  *access.Access
	// Mux serves HTTP: "/" is Git smart HTTP, "/iceberg/" the REST catalog,
	// exactly "/" and "/ui/" the web view.
	Mux *http.ServeMux
	SSH *gitserver.SSHServer // nil without --ssh
	// Runs is the one run queue: the pipeline hook admits every run
	// through it; "weir runs" lists it.
	Runs *sched.Scheduler
	// Metrics is the server's Prometheus registry and what records on it.
	Metrics *metrics.Metrics
	// GC is the periodic garbage collection (--gc-every); its Last result
	// is what a metrics exporter reports.
	GC *gc.Periodic

	httpLn, sshLn net.Listener
	s3            *s3Endpoint    // nil without --s3 or with an S3 warehouse
	closers       []func() error // run in reverse order on shutdown
}

func runServe(args []string) error {
	var cfg serveConfig
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cfg.flags(fs)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "usage: weir serve [flags]\n\nServe Git repos over smart HTTP and SSH. Anonymous read/write is allowed\nonly on loopback listeners; elsewhere use SSH keys and HTTP tokens (weir user).\n\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q (see weir serve --help)", fs.Arg(0))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app, err := newServeApp(cfg, os.Stderr)
	if err != nil {
		return err
	}
	return app.run(ctx, os.Stdout)
}

// newServeApp builds the server in the order serveApp's comment draws;
// nothing is served until run.
func newServeApp(cfg serveConfig, logOut io.Writer) (_ *serveApp, err error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	if cfg.httpAddr == "" && cfg.sshAddr == "" {
		return nil, errors.New("nothing to serve: both --http and --ssh are empty")
	}
	a := &serveApp{Config: cfg, Logger: slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))}
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.DataDir, err = filepath.Abs(cfg.data); err != nil {
		return nil, err
	}
	a.Warehouse = filepath.Join(a.DataDir, "warehouse")
	if err := os.MkdirAll(a.Warehouse, 0o700); err != nil {
		return nil, err
	}
	for _, step := range []func() error{a.openStorage, a.openAccess, a.openMetrics, a.newGit, a.openCatalog, a.listenHTTP, a.listenSSH, a.buildPipelines, a.listenS3, a.mountIceberg, a.mountWeb, a.mountAdmin, a.mountOps, a.newGC} {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// openStorage opens the Pebble database of objects and refs; Pebble logs
// through the server's logger (--log-level).
func (a *serveApp) openStorage() (err error) {
	cfg := a.Config
	if a.DB, err = pebblekv.Open(filepath.Join(a.DataDir, "pebble"), a.Logger); err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.closers = append(a.closers, a.DB.Close)
	a.Objects, err = objects.Open(a.DB, objects.Limits{
		MaxPackBytes:     cfg.maxPackBytes,
		MaxObjectBytes:   cfg.maxObjectBytes,
		MaxInflatedBytes: cfg.maxInflatedBytes,
		MaxObjects:       cfg.maxPackObjects,
		MaxBaseMemory:    cfg.maxDeltaBaseBytes,
	})
	if err != nil {
		return fmt.Errorf("open database: %w", err)
	}
	a.Refs = refs.NewDB(a.Objects)
	return nil
}

// openAccess reads users.json (re-read whenever it changes) and the
// --authorized-keys file.
func (a *serveApp) openAccess() (err error) {
	a.Access, err = access.New(access.Config{
		Users:          access.OpenUsers(filepath.Join(a.DataDir, "users.json")),
		AuthorizedKeys: a.Config.authorizedKeys,
		Protected:      strings.Split(a.Config.protected, ","),
	})
	return err
}

// newGit builds the Git protocol server; the pipeline hook is set by
// buildPipelines.
func (a *serveApp) newGit() error {
	cfg := a.Config
	a.Git = &gitserver.Server{
		Objects:         a.Objects,
		Refs:            a.Refs,
		Protected:       a.Access.Protected,
		Logger:          a.Logger,
		ReadIdleTimeout: cfg.pushIdleTimeout,
		Receive: gitserver.ReceiveLimits{
			MaxCommands:     cfg.maxPushRefs,
			MaxCommandBytes: cfg.maxCommandBytes,
			MaxConcurrent:   cfg.maxPushes,
			QueueTimeout:    cfg.pushQueueTimeout,
		},
	}
	return nil
}

// openCatalog opens the warehouse the flags choose (--warehouse, --s3-*;
// the environment is the fallback, <data>/warehouse the default) and the
// one catalog over it.
func (a *serveApp) openCatalog() error {
	wh, err := openWarehouse(a.DataDir, a.Config.warehouse, a.localWarehouseOptions()...)
	if err != nil {
		return fmt.Errorf("warehouse: %w", err)
	}
	a.Catalog = catalog.New(a.Objects, a.Refs, wh, catalog.WithLogger(a.Logger))
	return nil
}

// listenHTTP binds --http and serves Git smart HTTP at "/".
func (a *serveApp) listenHTTP() (err error) {
	a.Mux = http.NewServeMux()
	if a.Config.httpAddr == "" {
		return nil
	}
	if a.httpLn, err = net.Listen("tcp", a.Config.httpAddr); err != nil {
		return fmt.Errorf("--http: %w", err)
	}
	a.closers = append(a.closers, ignoreClosed(a.httpLn.Close))
	a.HTTPAccess = a.Access.WithAnonymous(access.IsLoopback(a.httpLn.Addr()) && !a.Config.assumeRemote)
	a.Mux.Handle("/", gitserver.NewHTTPHandler(a.Git, a.HTTPAccess))
	return nil
}

// listenSSH binds --ssh with the data dir's host keys.
func (a *serveApp) listenSSH() error {
	if a.Config.sshAddr == "" {
		return nil
	}
	hostKeys, err := gitserver.LoadHostKeys(a.DataDir)
	if err != nil {
		return err
	}
	if a.sshLn, err = net.Listen("tcp", a.Config.sshAddr); err != nil {
		return fmt.Errorf("--ssh: %w", err)
	}
	a.closers = append(a.closers, ignoreClosed(a.sshLn.Close))
	a.SSHAccess = a.Access.WithAnonymous(access.IsLoopback(a.sshLn.Addr()) && !a.Config.assumeRemote)
	a.SSH = gitserver.NewSSHServer(a.Git, a.SSHAccess, hostKeys...)
	return nil
}

// run serves until ctx is done, then shuts down gracefully.
func (a *serveApp) run(ctx context.Context, out io.Writer) error {
	defer a.close()
	errc := make(chan error, 2)
	var httpSrv *http.Server
	fmt.Fprintf(out, "weir serve: data %s\n", a.DataDir)
	if a.httpLn != nil {
		httpSrv = &http.Server{
			Handler:           a.Mux,
			ReadHeaderTimeout: 30 * time.Second,
			ErrorLog:          slog.NewLogLogger(a.Logger.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := httpSrv.Serve(a.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
		fmt.Fprintf(out, "weir serve: http %s (anonymous access %s)\n", cloneURL("http://", a.httpLn.Addr()), onOff(a.HTTPAccess.AnonymousAllowed()))
	}
	if a.s3 != nil {
		a.s3.serve(a.Logger, errc)
		fmt.Fprintf(out, "weir serve: s3 %s (bucket %s; credentials from the Iceberg REST catalog)\n", a.s3.url, catalog.LocalBucket)
	}
	if a.sshLn != nil {
		go func() {
			if err := a.SSH.Serve(a.sshLn); err != nil {
				errc <- fmt.Errorf("ssh: %w", err)
			}
		}()
		fmt.Fprintf(out, "weir serve: ssh %s (anonymous access %s)\n", cloneURL("ssh://git@", a.sshLn.Addr()), onOff(a.SSHAccess.AnonymousAllowed()))
	}
	// Deltas of what pushes bring are computed off the clones' path; the
	// worker stops before the stores close.
	wctx, stopWorker := context.WithCancel(ctx)
	workerDone := make(chan struct{})
	go func() {
		defer close(workerDone)
		a.Git.RunDeltaWorker(wctx)
	}()
	defer func() {
		stopWorker()
		<-workerDone
	}()
	// The periodic collection stops, like the delta worker, before the
	// stores close.
	gcDone := make(chan struct{})
	go func() {
		defer close(gcDone)
		a.GC.Run(wctx)
	}()
	defer func() {
		stopWorker()
		<-gcDone
	}()
	a.Logger.Info("weir serve started", "data", a.DataDir)
	var err error
	select {
	case <-ctx.Done():
		a.Logger.Info("shutting down", "grace", a.Config.shutdownGrace)
	case err = <-errc:
		a.Logger.Error("listener failed; shutting down", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.shutdownGrace)
	defer cancel()
	if httpSrv != nil {
		if e := httpSrv.Shutdown(sctx); e != nil {
			httpSrv.Close()
		}
	}
	if a.s3 != nil {
		a.s3.shutdown(sctx)
	}
	if a.SSH != nil {
		if e := a.SSH.Shutdown(sctx); e != nil {
			a.SSH.Close()
		}
	}
	a.Logger.Info("stopped")
	return err
}

// newGC builds the periodic garbage collection (--gc-every, --gc-grace,
// --keep-failed-runs, --keep-runs, --reflog-expiry): the store remembers
// its Puts for the grace period, the in-flight data a collection keeps.
func (a *serveApp) newGC() error {
	opts := a.Config.gc.opts
	if opts.Grace != gc.Forever && opts.Grace < a.Config.nodes.limits.Wall {
		a.Logger.Warn("--gc-grace is shorter than --node-timeout: a run longer than the grace period may lose the files it wrote before it ends", "gc_grace", opts.Grace, "node_timeout", a.Config.nodes.limits.Wall)
	}
	a.Objects.KeepRecent(max(opts.Grace, gc.DefaultGrace))
	a.GC = &gc.Periodic{
		Collector: &gc.Collector{Objects: a.Objects, Refs: a.Refs, Catalog: a.Catalog, Logger: a.Logger},
		Options:   opts,
		Every:     a.Config.gcEvery,
		OnResult: func(r gc.Result, err error) {
			a.Metrics.GC(metrics.GCResult{Objects: int64(r.Objects), Bytes: r.ObjectBytes + r.FileBytes}, err)
		},
		Defer: func() string { return longRun(a.Runs.Runs(""), opts.Grace) },
	}
	return nil
}

// longRun names a run that has been running for more than half of grace
// ("" if none): a collection now could find its files, which no ref names
// until it lands, older than grace (runs longer than --node-timeout are
// possible: a run is many nodes).
func longRun(runs []sched.RunInfo, grace time.Duration) string {
	if grace == gc.Forever {
		return ""
	}
	for _, r := range runs {
		if r.State == sched.Running && r.Duration > grace/2 {
			return fmt.Sprintf("run %s of %s has been running for %s (--gc-grace %s)", r.ID, r.Repo, r.Duration.Round(time.Second), grace)
		}
	}
	return ""
}

// close releases everything in reverse order of acquisition.
func (a *serveApp) close() {
	for i := len(a.closers) - 1; i >= 0; i-- {
		if err := a.closers[i](); err != nil {
			a.Logger.Warn("close", "err", err)
		}
	}
	a.closers = nil
}

func ignoreClosed(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// cloneURL shows how to clone from a listener: 0.0.0.0 and :: become HOST.
func cloneURL(prefix string, addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return prefix + addr.String() + "/<repo>.git"
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "HOST"
	}
	return prefix + net.JoinHostPort(host, port) + "/<repo>.git"
}

func onOff(b bool) string {
	if b {
		return "on: loopback listener"
	}
	return "off: keys and tokens only"
}
