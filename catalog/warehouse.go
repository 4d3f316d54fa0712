package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	_ "github.com/apache/iceberg-go/io/gocloud/s3" // registers s3:// FileIO
)

// Warehouse is where Iceberg metadata and Parquet data files live. Git holds
// only pointers to them.
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
	// IO returns an iceberg-go FileIO that reads and writes under Root.
	IO(ctx context.Context) (icebergio.IO, error)
	// Upload stores the local file src at location (a hard link when the
	// warehouse is local and on the same filesystem, else a copy).
	Upload(ctx context.Context, src, location string) error
	// Local returns a local path with location's content: the file itself
	// for a local warehouse, a cached download for S3.
	Local(ctx context.Context, location string) (string, error)
}

// LocalWarehouse is a warehouse in a local folder (file:// locations).
type LocalWarehouse struct{ dir string }

// NewLocalWarehouse returns a warehouse rooted at dir, creating it.
func NewLocalWarehouse(dir string) (*LocalWarehouse, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("catalog: create warehouse: %w", err)
	}
	return &LocalWarehouse{dir: abs}, nil
}

// Root implements Warehouse.
func (w *LocalWarehouse) Root() string { return "file://" + filepath.ToSlash(w.dir) }

// Props implements Warehouse.
func (w *LocalWarehouse) Props() iceberg.Properties { return iceberg.Properties{} }

// ReaderProps implements Warehouse.
func (w *LocalWarehouse) ReaderProps() iceberg.Properties { return iceberg.Properties{} }

// IO implements Warehouse.
func (w *LocalWarehouse) IO(context.Context) (icebergio.IO, error) { return icebergio.LocalFS{}, nil }

func (w *LocalWarehouse) path(location string) (string, error) {
	root := w.Root() + "/"
	if !strings.HasPrefix(location, root) {
		return "", fmt.Errorf("catalog: location %q is outside the warehouse %s", location, w.Root())
	}
	rel := strings.TrimPrefix(location, root)
	if strings.Contains(rel, "..") {
		return "", fmt.Errorf("catalog: location %q contains \"..\"", location)
	}
	return filepath.Join(w.dir, filepath.FromSlash(rel)), nil
}

// Upload implements Warehouse.
func (w *LocalWarehouse) Upload(_ context.Context, src, location string) error {
	dst, err := w.path(location)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	return copyFile(src, dst)
}

// Local implements Warehouse.
func (w *LocalWarehouse) Local(_ context.Context, location string) (string, error) {
	return w.path(location)
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
	opts := s3.Options{
		Region:       cfg.Region,
		UsePathStyle: cfg.PathStyle,
		Credentials:  credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, cfg.SessionToken),
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	return &S3Warehouse{cfg: cfg, client: s3.New(opts)}, nil
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

// IO implements Warehouse.
func (w *S3Warehouse) IO(ctx context.Context) (icebergio.IO, error) {
	return icebergio.LoadFS(ctx, w.Props(), w.Root()+"/")
}

func (w *S3Warehouse) key(location string) (string, error) {
	u, err := url.Parse(location)
	if err != nil || u.Scheme != "s3" || u.Host != w.cfg.Bucket {
		return "", fmt.Errorf("catalog: location %q is not in bucket %s", location, w.cfg.Bucket)
	}
	k := strings.TrimPrefix(u.Path, "/")
	if w.cfg.Prefix != "" && !strings.HasPrefix(k, w.cfg.Prefix+"/") {
		return "", fmt.Errorf("catalog: location %q is outside the warehouse %s", location, w.Root())
	}
	return k, nil
}

// Upload implements Warehouse.
func (w *S3Warehouse) Upload(ctx context.Context, src, location string) error {
	k, err := w.key(location)
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
	_, err = w.client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(w.cfg.Bucket), Key: aws.String(k), Body: f, ContentLength: aws.Int64(fi.Size())})
	if err != nil {
		return fmt.Errorf("catalog: upload %s: %w", location, err)
	}
	return nil
}

// Local implements Warehouse: downloads location into the cache directory
// once (data files are immutable, so the cache never goes stale). The
// copy is mode 0644, like a local warehouse's files. Nothing evicts the
// cache: it holds every file ever read (ReadTableFiles: pipeline inputs,
// weir query).
func (w *S3Warehouse) Local(ctx context.Context, location string) (string, error) {
	k, err := w.key(location)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(location))
	dst := filepath.Join(w.cfg.CacheDir, hex.EncodeToString(sum[:16])+filepath.Ext(k))
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

// Client returns the S3 client (for tests and import).
func (w *S3Warehouse) Client() *s3.Client { return w.client }
