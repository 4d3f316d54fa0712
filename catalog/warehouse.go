package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"golang.org/x/sys/unix"

	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers s3:// FileIO
)

// Warehouse is where Iceberg metadata and Parquet data files live. Git holds
// only pointers to them. The catalog reaches a repo's files only through
// the repo's Area, never through the warehouse as a whole (invariant 9).
type Warehouse interface {
	// Root is the location every table lives under, without a trailing
	// slash: "file:///srv/weir/warehouse" or "s3://bucket/prefix".
	Root() string
	// Props are the iceberg-go FileIO properties the server itself uses for
	// locations under Root: S3 endpoint, region, addressing and the
	// server's own credentials. Empty for the local warehouse. They hold
	// secrets: never log them, never hand them out (see ReaderProps).
	Props() iceberg.Properties
	// ReaderProps are Props without any credential: what a reader needs
	// to find Root (S3 endpoint, region, addressing) when it brings its
	// own credentials. Safe to hand to any client and to log.
	ReaderProps() iceberg.Properties
	// Area returns the part of the warehouse at Root()/seg, where one
	// repo's files live (seg is one path segment, see repoSegment).
	Area(seg string) (Area, error)
}

// Area is one repo's part of a warehouse: the folder (or key prefix)
// Prefix. Every method takes locations, resolves them against Prefix with
// the one canonicaliser (see location.go) and reaches nothing outside it:
// a local area opens files only through an os.Root at its folder, so no
// "..", symlink or hard-to-spot escape leads out; an S3 area only reads
// and writes keys under its prefix. A location that does not resolve is
// an error wrapping ErrBadLocation or ErrOutsideRepo.
type Area interface {
	// Prefix is the area's location, without a trailing slash.
	Prefix() string
	// Resolve returns loc's path relative to Prefix ("ns/t/data/x.parquet")
	// if loc is a canonical location strictly under Prefix.
	Resolve(loc string) (string, error)
	// IO returns an iceberg-go FileIO confined to the area: every name it
	// is given must resolve.
	IO(ctx context.Context) (icebergio.IO, error)
	// Upload stores the local file src at location (a hard link when the
	// warehouse is local and on the same filesystem, else a copy).
	Upload(ctx context.Context, src, location string) error
	// Local returns a local path with location's content: the file itself
	// for a local warehouse (checked to be a regular file inside the
	// area's folder once every symlink is resolved), a cached download
	// for S3.
	Local(ctx context.Context, location string) (string, error)
	// SyncFile makes one file the server wrote durable where the
	// warehouse needs it (a no-op on S3, whose PUTs are durable).
	SyncFile(ctx context.Context, location string) error
}

// area holds what every Area implementation shares: its prefix.
type area struct{ p prefix }

// Prefix implements Area.
func (a *area) Prefix() string { return a.p.String() }

// Resolve implements Area.
func (a *area) Resolve(loc string) (string, error) { return a.p.resolve(loc) }

// LocalBucket is the bucket name of the local warehouse: s3://weir/<key>
// names the file <dir>/<key> of a LocalWarehouse, whichever name
// (WithS3Names or not) its new tables get. The S3 endpoint (catalog/s3)
// serves the warehouse as this bucket.
const LocalBucket = "weir"

// LocalWarehouse is a warehouse in a local folder. Its files have two
// names, and every Area resolves both to the same file under the same
// os.Root:
//
//	file:///srv/weir-data/warehouse/team@demo/sales/orders/...   (the folder)
//	s3://weir/team@demo/sales/orders/...                           (LocalBucket)
//
// Root (so the location of every new table) is the file:// name unless
// the warehouse was made WithS3Names, when it is s3://weir: then readers
// on other machines read the tables through the S3 endpoint that serves
// the folder (catalog/s3). Tables keep the locations they were created
// with, so a file:// table stays readable by the server and local readers
// only. Iceberg metadata holds absolute locations, so the name a table
// is created with is the name its files keep for good.
type LocalWarehouse struct {
	dir    string   // absolute, as given: locations are built from it
	real   string   // dir with every symlink resolved
	root   *os.Root // dir, open for the warehouse's lifetime
	p      prefix   // the canonical name: file (default) or s3
	alt    prefix   // the other name, also resolved
	s3Name bool
}

// LocalOption configures a LocalWarehouse.
type LocalOption func(*LocalWarehouse)

// WithS3Names makes the locations of new tables s3://weir/<repo>/...
// instead of file:///<dir>/<repo>/... (see LocalWarehouse).
func WithS3Names() LocalOption { return func(w *LocalWarehouse) { w.s3Name = true } }

// NewLocalWarehouse returns a warehouse rooted at dir, creating it.
func NewLocalWarehouse(dir string, opts ...LocalOption) (*LocalWarehouse, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("catalog: create warehouse: %w", err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("catalog: warehouse: %w", err)
	}
	p, err := parsePrefix("file://" + filepath.ToSlash(abs))
	if err != nil {
		return nil, fmt.Errorf("catalog: warehouse folder %s cannot be a location prefix (rename it): %w", abs, err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("catalog: open warehouse: %w", err)
	}
	s3p := prefix{scheme: "s3", host: LocalBucket}
	w := &LocalWarehouse{dir: abs, real: real, root: root, p: p, alt: s3p}
	for _, o := range opts {
		o(w)
	}
	if w.s3Name {
		w.p, w.alt = s3p, p
	}
	return w, nil
}

// Root implements Warehouse: s3://weir WithS3Names, else file:///<dir>.
func (w *LocalWarehouse) Root() string { return strings.TrimSuffix(w.p.String(), "/") }

// S3Names reports whether new tables get s3://weir/ locations.
func (w *LocalWarehouse) S3Names() bool { return w.s3Name }

// Props implements Warehouse.
func (w *LocalWarehouse) Props() iceberg.Properties { return iceberg.Properties{} }

// ReaderProps implements Warehouse.
func (w *LocalWarehouse) ReaderProps() iceberg.Properties { return iceberg.Properties{} }

// Area implements Warehouse: the folder <dir>/<seg>, created by the first
// write.
func (w *LocalWarehouse) Area(seg string) (Area, error) {
	p, err := w.p.child(seg)
	if err != nil {
		return nil, err
	}
	alt, err := w.alt.child(seg)
	if err != nil {
		return nil, err
	}
	return &localArea{area: area{p}, alt: alt, w: w, seg: seg}, nil
}

// Bucket returns the area of the repo whose key prefix begins key (its
// first segment), and key's path below it, for the S3 endpoint: key is
// resolved as the location s3://weir/<key> by the one canonicaliser, so
// a key that is not canonical (percent-escapes, "..", "//", NUL, too
// long) wraps ErrBadLocation and one naming no file below a repo's
// folder ErrOutsideRepo.
func (w *LocalWarehouse) Bucket(key string) (*LocalArea, string, error) {
	loc := "s3://" + LocalBucket + "/" + key
	seg, _, _ := strings.Cut(key, "/")
	if err := checkSegment(seg); err != nil {
		return nil, "", fmt.Errorf("%w %q: %v", ErrBadLocation, loc, err)
	}
	a, err := w.Area(seg)
	if err != nil {
		return nil, "", err
	}
	la := a.(*localArea)
	rel, err := la.Resolve(loc)
	if err != nil {
		return nil, "", err
	}
	return &LocalArea{la}, rel, nil
}

// serverPaths are the warehouse's own paths, which text shown to a client
// must not carry (Catalog.Redact).
func (w *LocalWarehouse) serverPaths() []string {
	return []string{w.Root() + "/", w.dir + "/", w.real + "/"}
}

// localArea is one repo's folder of a LocalWarehouse. It holds no file
// descriptor: each operation opens the folder as an os.Root below the
// warehouse's own root, so that neither ".." nor a symlink in the folder
// leads out of it.
type localArea struct {
	area
	alt prefix // the warehouse's other name for the same folder
	w   *LocalWarehouse
	seg string
}

// Resolve implements Area: a location under either name of the area's
// folder (see LocalWarehouse), by its scheme.
func (a *localArea) Resolve(loc string) (string, error) {
	if strings.HasPrefix(loc, a.alt.scheme+"://") {
		return a.alt.resolve(loc)
	}
	return a.p.resolve(loc)
}

// open returns the area's folder as an os.Root, creating it first when
// create is set. The caller closes it; files opened from it stay open.
func (a *localArea) open(create bool) (*os.Root, error) {
	if create {
		if err := a.w.root.MkdirAll(a.seg, 0o755); err != nil {
			return nil, err
		}
	}
	return a.w.root.OpenRoot(a.seg)
}

// IO implements Area.
func (a *localArea) IO(context.Context) (icebergio.IO, error) { return localIO{a}, nil }

// Upload implements Area: the file src becomes location, replacing what
// was there (place).
func (a *localArea) Upload(_ context.Context, src, location string) error {
	rel, err := a.Resolve(location)
	if err != nil {
		return err
	}
	return a.place(src, rel, true)
}

// place makes the complete local file src the file rel of the area: a
// hard link made relative to the destination folder's descriptor (opened
// through the root), else (src on another file system, or any refusal when replacing) a
// synced copy
// beside rel, renamed over it when replace, else linked to it so that an
// existing rel is never replaced (ErrExists). Either way the name appears
// only with its whole content.
func (a *localArea) place(src, rel string, replace bool) error {
	r, err := a.open(true)
	if err != nil {
		return err
	}
	defer r.Close()
	dir := path.Dir(rel)
	if err := r.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	d, err := r.Open(dir)
	if err != nil {
		return err
	}
	err = unix.Linkat(unix.AT_FDCWD, src, int(d.Fd()), path.Base(rel), 0)
	if err == nil {
		err = d.Sync()
	}
	d.Close()
	switch {
	case err == nil:
		return nil
	case replace:
		// Any refusal (EEXIST, EXDEV, EPERM under protected_hardlinks
		// for a file another user owns): copy.
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: %s", ErrExists, rel)
	case !errors.Is(err, unix.EXDEV):
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := fmt.Sprintf("%s.%d.weir-tmp", rel, os.Getpid())
	out, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer r.Remove(tmp)
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if replace {
		return r.Rename(tmp, rel)
	}
	if err := r.Link(tmp, rel); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w: %s", ErrExists, rel)
		}
		return err
	}
	return nil
}

// Local implements Area. The file is opened through the root, and the
// path returned is the kernel's name of the file opened (every symlink
// resolved), which must lie in the area's folder.
func (a *localArea) Local(_ context.Context, location string) (string, error) {
	rel, err := a.Resolve(location)
	if err != nil {
		return "", err
	}
	r, err := a.open(false)
	if err != nil {
		return "", err
	}
	defer r.Close()
	f, err := r.Open(rel)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: %s is not a regular file", ErrBadLocation, rel)
	}
	real, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		return "", fmt.Errorf("catalog: name of %s: %w", rel, err)
	}
	if folder := filepath.Join(a.w.real, a.seg) + string(filepath.Separator); !strings.HasPrefix(real, folder) {
		return "", fmt.Errorf("%w: %s resolves outside this repo's folder of the warehouse", ErrOutsideRepo, rel)
	}
	return real, nil
}

// SyncFile implements Area: fsync of the file and of the folder naming it.
func (a *localArea) SyncFile(_ context.Context, location string) error {
	rel, err := a.Resolve(location)
	if err != nil {
		return err
	}
	r, err := a.open(false)
	if err != nil {
		return err
	}
	defer r.Close()
	for _, name := range []string{rel, path.Dir(rel)} {
		f, err := r.Open(name)
		if err != nil {
			return fmt.Errorf("catalog: sync: %w", err)
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return fmt.Errorf("catalog: sync: %w", err)
		}
	}
	return nil
}

// localIO is the iceberg-go FileIO of a localArea: every name is a
// location resolved against the area, then opened through its os.Root.
// Errors name files relative to the area, never by their server path.
type localIO struct{ a *localArea }

var (
	_ icebergio.ReadFileIO  = localIO{}
	_ icebergio.WriteFileIO = localIO{}
	_ icebergio.StatIO      = localIO{}
)

func (f localIO) root(op, name string, create bool) (*os.Root, string, error) {
	rel, err := f.a.Resolve(name)
	if err != nil {
		return nil, "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	r, err := f.a.open(create)
	if err != nil {
		return nil, "", err
	}
	if create {
		if err := r.MkdirAll(path.Dir(rel), 0o755); err != nil {
			r.Close()
			return nil, "", err
		}
	}
	return r, rel, nil
}

// Open implements icebergio.IO.
func (f localIO) Open(name string) (icebergio.File, error) {
	r, rel, err := f.root("open", name, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fh, err := r.Open(rel)
	if err != nil {
		return nil, err
	}
	return fh, nil
}

// ReadFile implements icebergio.ReadFileIO.
func (f localIO) ReadFile(name string) ([]byte, error) {
	r, rel, err := f.root("read", name, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadFile(rel)
}

// Create implements icebergio.WriteFileIO.
func (f localIO) Create(name string) (icebergio.FileWriter, error) {
	r, rel, err := f.root("create", name, true)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	fh, err := r.Create(rel)
	if err != nil {
		return nil, err
	}
	return fh, nil
}

// WriteFile implements icebergio.WriteFileIO.
func (f localIO) WriteFile(name string, p []byte) error {
	r, rel, err := f.root("write", name, true)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.WriteFile(rel, p, 0o644)
}

// Remove implements icebergio.IO.
func (f localIO) Remove(name string) error {
	r, rel, err := f.root("remove", name, false)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Remove(rel)
}

// Stat implements icebergio.StatIO.
func (f localIO) Stat(name string) (fs.FileInfo, error) {
	r, rel, err := f.root("stat", name, false)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.Stat(rel)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dst + ".tmp"
	out, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		os.Remove(tmp)
		return err
	}
	if err := out.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dst)
}

// S3Config configures an S3 or S3-compatible warehouse.
type S3Config struct {
	Bucket          string
	Prefix          string // key prefix inside the bucket, may be empty
	Endpoint        string // e.g. http://127.0.0.1:9000; empty for AWS
	Region          string // default us-east-1
	PathStyle       bool   // path-style addressing (most S3-compatible servers)
	AccessKeyID     string // default $AWS_ACCESS_KEY_ID
	SecretAccessKey string // default $AWS_SECRET_ACCESS_KEY
	SessionToken    string // default $AWS_SESSION_TOKEN
	CacheDir        string // where ReadTableFiles downloads Parquet files
}

// String describes c without its credentials, so that a config printed
// by mistake (%v, %+v, a log field) never shows a key.
func (c S3Config) String() string {
	creds := "from the environment"
	if c.AccessKeyID != "" {
		creds = "static (redacted)"
	}
	return fmt.Sprintf("S3Config{Bucket:%q Prefix:%q Endpoint:%q Region:%q PathStyle:%t Credentials:%s CacheDir:%q}",
		c.Bucket, c.Prefix, c.Endpoint, c.Region, c.PathStyle, creds, c.CacheDir)
}

// GoString is String: %#v never shows a key either.
func (c S3Config) GoString() string { return c.String() }

// S3Warehouse is a warehouse in an S3 bucket.
type S3Warehouse struct {
	cfg    S3Config
	client *s3.Client
	p      prefix
}

// NewS3Warehouse returns a warehouse in cfg.Bucket.
func NewS3Warehouse(cfg S3Config) (*S3Warehouse, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("catalog: S3 warehouse needs a bucket")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.AccessKeyID == "" {
		cfg.AccessKeyID = os.Getenv("AWS_ACCESS_KEY_ID")
		cfg.SecretAccessKey = os.Getenv("AWS_SECRET_ACCESS_KEY")
		cfg.SessionToken = os.Getenv("AWS_SESSION_TOKEN")
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = filepath.Join(os.TempDir(), "weir-s3-cache")
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	p, err := parsePrefix("s3://" + cfg.Bucket + "/" + cfg.Prefix)
	if err != nil || p.host != cfg.Bucket {
		return nil, fmt.Errorf("catalog: S3 bucket %q and prefix %q do not make a location prefix: %v", cfg.Bucket, cfg.Prefix, err)
	}
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return &S3Warehouse{cfg: cfg, client: s3.New(opts), p: p}, nil
}

// String names the warehouse by its root; like S3Config.String it never
// shows a key.
func (w *S3Warehouse) String() string { return "S3Warehouse(" + w.Root() + ")" }

// Root implements Warehouse.
func (w *S3Warehouse) Root() string {
	if w.cfg.Prefix == "" {
		return "s3://" + w.cfg.Bucket
	}
	return "s3://" + w.cfg.Bucket + "/" + w.cfg.Prefix
}

// ReaderProps implements Warehouse: region, endpoint and addressing.
func (w *S3Warehouse) ReaderProps() iceberg.Properties {
	p := iceberg.Properties{icebergio.S3Region: w.cfg.Region}
	if w.cfg.Endpoint != "" {
		p[icebergio.S3EndpointURL] = w.cfg.Endpoint
	}
	if !w.cfg.PathStyle {
		p[icebergio.S3ForceVirtualAddressing] = "true"
	}
	return p
}

// Props implements Warehouse: ReaderProps plus the server's static
// credentials, when it has any (else iceberg-go falls back to the AWS
// default chain).
func (w *S3Warehouse) Props() iceberg.Properties {
	p := w.ReaderProps()
	if w.cfg.AccessKeyID != "" {
		p[icebergio.S3AccessKeyID] = w.cfg.AccessKeyID
		p[icebergio.S3SecretAccessKey] = w.cfg.SecretAccessKey
		if w.cfg.SessionToken != "" {
			p[icebergio.S3SessionToken] = w.cfg.SessionToken
		}
	}
	return p
}

// Area implements Warehouse: the keys under <prefix>/<seg>/.
func (w *S3Warehouse) Area(seg string) (Area, error) {
	p, err := w.p.child(seg)
	if err != nil {
		return nil, err
	}
	return &s3Area{area: area{p}, w: w}, nil
}

// serverPaths: an S3 warehouse has no server path (Catalog.Redact); the
// cache folder of downloads is one.
func (w *S3Warehouse) serverPaths() []string { return []string{w.cfg.CacheDir + "/"} }

// s3Area is one repo's key prefix of an S3Warehouse.
type s3Area struct {
	area
	w *S3Warehouse
}

// key returns the object key of a location under the area.
func (a *s3Area) key(location string) (string, error) {
	rel, err := a.Resolve(location)
	if err != nil {
		return "", err
	}
	return strings.Join(a.p.segs, "/") + "/" + rel, nil
}

// IO implements Area: iceberg-go's S3 FileIO behind a check of every name.
func (a *s3Area) IO(ctx context.Context) (icebergio.IO, error) {
	inner, err := icebergio.LoadFS(ctx, a.w.Props(), a.w.Root()+"/")
	if err != nil {
		return nil, err
	}
	return &prefixIO{a: a, inner: inner}, nil
}

// Upload implements Area.
func (a *s3Area) Upload(ctx context.Context, src, location string) error {
	k, err := a.key(location)
	if err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	_, err = a.w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.w.cfg.Bucket), Key: aws.String(k), Body: f, ContentLength: aws.Int64(fi.Size())})
	if err != nil {
		return fmt.Errorf("catalog: upload %s: %w", location, err)
	}
	return nil
}

// Local implements Area: downloads location into the cache directory
// once (data files are immutable, so the cache never goes stale). The
// copy is mode 0644, like a local warehouse's files. Nothing evicts the
// cache: it holds every file ever read (ReadTableFiles: pipeline inputs,
// weir query).
func (a *s3Area) Local(ctx context.Context, location string) (string, error) {
	k, err := a.key(location)
	if err != nil {
		return "", err
	}
	w := a.w
	sum := sha256.Sum256([]byte(location))
	dst := filepath.Join(w.cfg.CacheDir, hex.EncodeToString(sum[:16])+path.Ext(k))
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	if err := os.MkdirAll(w.cfg.CacheDir, 0o755); err != nil {
		return "", err
	}
	out, err := w.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(w.cfg.Bucket), Key: aws.String(k)})
	if err != nil {
		return "", fmt.Errorf("catalog: download %s: %w", location, err)
	}
	defer out.Body.Close()
	tmp, err := os.CreateTemp(w.cfg.CacheDir, "dl-*")
	if err != nil {
		return "", err
	}
	// CreateTemp makes the file 0600; the cached copy must be as readable
	// as a local warehouse's file, because a pipeline hard-links it into a
	// node's input folder and the node runs as an unprivileged user.
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if _, err := io.Copy(tmp, out.Body); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp.Name(), dst)
}

// SyncFile implements Area: an acknowledged PUT is durable.
func (a *s3Area) SyncFile(context.Context, string) error { return nil }

// prefixIO is an iceberg-go FileIO confined to an area: each name must
// resolve against the area before the inner FileIO sees it.
type prefixIO struct {
	a     *s3Area
	inner icebergio.IO
}

var (
	_ icebergio.ReadFileIO  = (*prefixIO)(nil)
	_ icebergio.WriteFileIO = (*prefixIO)(nil)
)

func (f *prefixIO) check(op, name string) (string, error) {
	rel, err := f.a.Resolve(name)
	if err != nil {
		return "", &fs.PathError{Op: op, Path: name, Err: err}
	}
	return f.a.Prefix() + "/" + rel, nil
}

// Open implements icebergio.IO.
func (f *prefixIO) Open(name string) (icebergio.File, error) {
	loc, err := f.check("open", name)
	if err != nil {
		return nil, err
	}
	return f.inner.Open(loc)
}

// ReadFile implements icebergio.ReadFileIO.
func (f *prefixIO) ReadFile(name string) ([]byte, error) {
	loc, err := f.check("read", name)
	if err != nil {
		return nil, err
	}
	if rf, ok := f.inner.(icebergio.ReadFileIO); ok {
		return rf.ReadFile(loc)
	}
	fh, err := f.inner.Open(loc)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	return io.ReadAll(fh)
}

// Create implements icebergio.WriteFileIO.
func (f *prefixIO) Create(name string) (icebergio.FileWriter, error) {
	loc, err := f.check("create", name)
	if err != nil {
		return nil, err
	}
	wf, ok := f.inner.(icebergio.WriteFileIO)
	if !ok {
		return nil, errors.New("catalog: warehouse IO cannot write")
	}
	return wf.Create(loc)
}

// WriteFile implements icebergio.WriteFileIO.
func (f *prefixIO) WriteFile(name string, p []byte) error {
	loc, err := f.check("write", name)
	if err != nil {
		return err
	}
	wf, ok := f.inner.(icebergio.WriteFileIO)
	if !ok {
		return errors.New("catalog: warehouse IO cannot write")
	}
	return wf.WriteFile(loc, p)
}

// Remove implements icebergio.IO.
func (f *prefixIO) Remove(name string) error {
	loc, err := f.check("remove", name)
	if err != nil {
		return err
	}
	return f.inner.Remove(loc)
}

// Client returns the S3 client (for tests and import).
func (w *S3Warehouse) Client() *s3.Client { return w.client }
