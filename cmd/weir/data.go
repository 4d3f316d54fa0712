package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/weir-dev/weir/access"
	"github.com/weir-dev/weir/catalog"
	"github.com/weir-dev/weir/catalog/rest"
	"github.com/weir-dev/weir/kv/pebblekv"
	"github.com/weir-dev/weir/objects"
	"github.com/weir-dev/weir/refs"
)

// mountIceberg serves the Iceberg REST catalog at /iceberg/ next to Git
// smart HTTP, with the same identities and grants, over the server's one
// catalog.
func (a *serveApp) mountIceberg() error {
	if a.HTTPAccess == nil {
		return nil // no HTTP listener
	}
	cat, vend, acc := a.Catalog, a.Config.vendCredentials, a.HTTPAccess
	opts := []rest.Option{rest.WithLogger(a.Logger), rest.WithVendedCredentials(vend),
		rest.WithAuthorizer(acc.HTTPIdentity),
		rest.WithRepoAccess(func(id access.Identity, repo objects.RepoName, branch string, write bool) error {
			if !write {
				if !acc.Can(id, repo, access.PermRead) {
					return fmt.Errorf("%s may not read repo %s", id, repo)
				}
				return nil
			}
			if !acc.Can(id, repo, access.PermWrite) {
				return fmt.Errorf("%s may not write to repo %s", id, repo)
			}
			return acc.AuthorizeDataWrite(id, repo, branch)
		})}
	if a.s3 != nil {
		opts = append(opts, rest.WithTableCredentials(a.s3.tableCredentials))
	}
	a.Mux.Handle("/iceberg/", http.StripPrefix("/iceberg", meteredREST(a.Metrics, rest.NewRESTHandler(cat, opts...))))
	a.Logger.Info("iceberg rest catalog mounted", "path", "/iceberg/", "warehouse", cat.Warehouse().Root(), "vend_credentials", vend)
	if vend && len(cat.Warehouse().Props()) > len(cat.Warehouse().ReaderProps()) {
		a.Logger.Warn("iceberg rest: --iceberg-vend-credentials is on: every reader allowed to load a table receives the server's own S3 keys")
	}
	return nil
}

// warehouseFlags choose the warehouse. Empty values fall back to the
// environment (WEIR_WAREHOUSE, WEIR_S3_ENDPOINT, WEIR_S3_REGION,
// WEIR_S3_PATH_STYLE; credentials from AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then to <data>/warehouse.
// weir serve, data, import and query all take them.
type warehouseFlags struct {
	warehouse, endpoint, region string
	pathStyle                   bool
	// accessKeyID and secretAccessKey override AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY. Secrets: their flag defaults stay empty so
	// --help never prints the environment's key.
	accessKeyID, secretAccessKey string
}

func (w *warehouseFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&w.warehouse, "warehouse", "", "warehouse: a folder, or s3://bucket/prefix (default $WEIR_WAREHOUSE, else <data>/warehouse); weir serve and the offline commands must agree")
	fs.StringVar(&w.endpoint, "s3-endpoint", "", "S3-compatible endpoint URL (default $WEIR_S3_ENDPOINT; empty: AWS)")
	fs.StringVar(&w.region, "s3-region", "", "S3 region (default $WEIR_S3_REGION, else us-east-1)")
	fs.BoolVar(&w.pathStyle, "s3-path-style", false, "S3 path-style addressing (default $WEIR_S3_PATH_STYLE; most S3-compatible servers need it)")
	fs.StringVar(&w.accessKeyID, "s3-access-key-id", "", "S3 access key id (default $AWS_ACCESS_KEY_ID; prefer the environment: flags show in ps)")
	fs.StringVar(&w.secretAccessKey, "s3-secret-access-key", "", "S3 secret access key (default $AWS_SECRET_ACCESS_KEY; prefer the environment: flags show in ps). Never logged")
}

func orEnv(v, env string) string {
	if v != "" {
		return v
	}
	return os.Getenv(env)
}

// s3Settings fills the endpoint, addressing and credentials of cfg from
// the flags, else the environment (NewS3Warehouse reads AWS_* when no key
// is given).
func (w warehouseFlags) s3Settings(cfg *catalog.S3Config) error {
	cfg.Endpoint = orEnv(w.endpoint, "WEIR_S3_ENDPOINT")
	cfg.Region = orEnv(w.region, "WEIR_S3_REGION")
	cfg.PathStyle = w.pathStyle || os.Getenv("WEIR_S3_PATH_STYLE") == "true"
	if (w.accessKeyID == "") != (w.secretAccessKey == "") {
		return errors.New("--s3-access-key-id and --s3-secret-access-key go together: give both, or neither (then AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are used)")
	}
	cfg.AccessKeyID, cfg.SecretAccessKey = w.accessKeyID, w.secretAccessKey
	return nil
}

func (w warehouseFlags) s3Config() (catalog.S3Config, bool, error) {
	loc := orEnv(w.warehouse, "WEIR_WAREHOUSE")
	if !strings.HasPrefix(loc, "s3://") {
		return catalog.S3Config{}, false, nil
	}
	u, err := url.Parse(loc)
	if err != nil || u.Host == "" {
		return catalog.S3Config{}, false, fmt.Errorf("warehouse %q: want s3://bucket/prefix", loc)
	}
	cfg := catalog.S3Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	if err := w.s3Settings(&cfg); err != nil {
		return catalog.S3Config{}, false, err
	}
	return cfg, true, nil
}

func openWarehouse(dataDir string, w warehouseFlags, local ...catalog.LocalOption) (catalog.Warehouse, error) {
	cfg, isS3, err := w.s3Config()
	if err != nil {
		return nil, err
	}
	if isS3 {
		cfg.CacheDir = filepath.Join(dataDir, "cache", "s3")
		return catalog.NewS3Warehouse(cfg)
	}
	dir := orEnv(w.warehouse, "WEIR_WAREHOUSE")
	if dir == "" {
		dir = filepath.Join(dataDir, "warehouse")
	}
	return catalog.NewLocalWarehouse(dir, local...)
}

// dataStores is the catalog and the branch rules an admin command acts
// on: the server's own (online), or the database opened directly with the
// rules of users.json (offline: Pebble locks the database, so opening it
// fails while weir serve runs).
type dataStores struct {
	cat   *catalog.Catalog
	rules *access.Access
	objs  *objects.Store
	refs  *refs.DB
	close func() error
}

// checkDataWrite refuses a write of branch b's data by an admin command
// that the server would refuse too: a branch without its code ref (a data
// ref only sits beside its code ref), or a require-run branch.
func (o *dataStores) checkDataWrite(ctx context.Context, repo objects.RepoName, b, what string) error {
	if _, err := o.cat.Refs().Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+b)); err != nil {
		return fmt.Errorf("branch %s of %s has no code ref (%v): a data ref only sits beside its code ref; push the branch first (git push origin %s)", b, repo, err, b)
	}
	if o.rules.Branch(repo, b).RequireRun {
		return fmt.Errorf("branch %s of %s requires a run (weir rule list): %s another branch, then push the merge of its data to refs/data/%s so that %s's expectations check it", b, repo, what, b, b)
	}
	return nil
}

func openOffline(dataDir string, w warehouseFlags) (*dataStores, error) {
	if _, err := os.Stat(filepath.Join(dataDir, "pebble")); err != nil {
		return nil, fmt.Errorf("no Weir database in %s (is --data right?): %w", dataDir, err)
	}
	db, err := pebblekv.Open(filepath.Join(dataDir, "pebble"), offlineLogger())
	if err != nil {
		return nil, err
	}
	wh, err := openWarehouse(dataDir, w)
	if err != nil {
		db.Close()
		return nil, err
	}
	objs, err := objects.Open(db, objects.Limits{})
	if err != nil {
		db.Close()
		return nil, err
	}
	rules, err := access.New(access.Config{Users: access.OpenUsers(filepath.Join(dataDir, "users.json"))})
	if err != nil {
		db.Close()
		return nil, err
	}
	rs := refs.NewDB(objs)
	return &dataStores{cat: catalog.New(objs, rs, wh, catalog.WithLogger(offlineLogger())), rules: rules, objs: objs, refs: rs, close: db.Close}, nil
}

const dataUsage = `usage: weir data <subcommand> --repo REPO [--data DIR] ...

  weir data branch NAME [FROM]    create data branch NAME (refs/data/NAME) at
                                  FROM: a branch, data tag or commit (default main)
  weir data tag NAME [FROM]       create data tag NAME (refs/tags/data/NAME)
  weir data merge FROM INTO       merge the data of FROM into branch INTO:
                                  fast-forward, else 3-way by table; refused
                                  (nothing changes) if both changed a table
  weir data delete NAME           delete data branch NAME
  weir data tables [REV]          list the tables at REV (default main)

Offline (--data) these commands open the database directly: stop weir
serve first (Pebble allows one process). While it runs, an admin runs the
same commands over SSH: ssh -p 7422 HOST weir data ... (no --data).

flags:
`

// runData is "weir data" offline.
func runData(args []string) error { return runOfflineAdmin(dataAdmin, args) }

// dataAdmin is "weir data", offline and over SSH.
var dataAdmin = adminCommand{name: "data", usage: dataUsage, db: true, define: defineData}

func defineData(fs *flag.FlagSet) func(context.Context, *adminEnv, []string) error {
	repoFlag := fs.String("repo", "", "repo name, e.g. team/demo")
	return func(ctx context.Context, env *adminEnv, pos []string) error {
		if len(pos) == 0 {
			env.usage()
			return errors.New("missing subcommand")
		}
		repo, err := objects.ParseRepoName(*repoFlag)
		if err != nil {
			return fmt.Errorf("--repo: %w", err)
		}
		arg := func(i int, def string) string {
			if i < len(pos) {
				return pos[i]
			}
			return def
		}
		need := func(min, max int, form string) error {
			if len(pos)-1 < min || len(pos)-1 > max {
				return fmt.Errorf("usage: weir data %s", form)
			}
			return nil
		}
		var check error
		switch pos[0] {
		case "branch":
			check = need(1, 2, "branch NAME [FROM]")
		case "tag":
			check = need(1, 2, "tag NAME [FROM]")
		case "merge":
			check = need(2, 2, "merge FROM INTO")
		case "delete":
			check = need(1, 1, "delete NAME")
		case "tables":
			check = need(0, 1, "tables [REV]")
		default:
			return fmt.Errorf("unknown subcommand %q (see weir data --help)", pos[0])
		}
		if check != nil {
			return check
		}
		st, err := env.stores()
		if err != nil {
			return err
		}
		return dataCommand(ctx, env.Out, st, repo, pos[0], arg(1, ""), arg(2, ""))
	}
}

func dataCommand(ctx context.Context, out io.Writer, off *dataStores, repo objects.RepoName, sub, a1, a2 string) error {
	cat := off.cat
	switch sub {
	case "branch":
		if a2 == "" {
			a2 = "main"
		}
		h, err := cat.CreateBranch(ctx, repo, a1, a2)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "created data branch %s at %s\n", a1, h)
	case "tag":
		if a2 == "" {
			a2 = "main"
		}
		h, err := cat.Tag(ctx, repo, a1, a2)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "created data tag %s at %s\n", a1, h)
	case "merge":
		if err := off.checkDataWrite(ctx, repo, a2, "merge into"); err != nil {
			return err
		}
		h, err := cat.Merge(ctx, repo, a1, a2)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "data branch %s is at %s\n", a2, h)
	case "delete":
		if _, err := cat.Refs().Resolve(ctx, repo, refs.Name(refs.HeadsPrefix+a1)); err == nil {
			return fmt.Errorf("branch %s of %s has code: delete the branch, code and data together, with git push origin :%s", a1, repo, a1)
		}
		h, err := cat.DeleteBranch(ctx, repo, a1)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted data branch %s (was %s)\n", a1, h)
	case "tables":
		if a1 == "" {
			a1 = "main"
		}
		h, _, err := cat.Resolve(ctx, repo, a1)
		if err != nil {
			return err
		}
		tabs, err := cat.Tables(ctx, repo, h)
		if err != nil {
			return err
		}
		names := make([]catalog.TableName, 0, len(tabs))
		for t := range tabs {
			names = append(names, t)
		}
		sort.Slice(names, func(i, j int) bool { return names[i].String() < names[j].String() })
		fmt.Fprintf(out, "%s at %s\n", a1, h)
		for _, t := range names {
			p := tabs[t]
			fmt.Fprintf(out, "%-30s rows %-10d files %-5d snapshot %d  %s\n", t, p.Rows, p.Files, p.SnapshotID, p.Schema)
		}
	}
	return nil
}

// sourceS3 is the S3 client for s3:// import sources.
func sourceS3(w warehouseFlags) (*s3.Client, error) {
	cfg, _, err := w.s3Config()
	if err != nil {
		return nil, err
	}
	if cfg.Bucket == "" {
		cfg.Bucket = "source" // the client is not bucket-bound
	}
	if err := w.s3Settings(&cfg); err != nil {
		return nil, err
	}
	s, err := catalog.NewS3Warehouse(cfg)
	if err != nil {
		return nil, err
	}
	return s.Client(), nil
}
