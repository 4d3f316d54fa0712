package s3

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/weir-dev/weir/catalog"
)

// Limits of the endpoint.
const (
	// MaxObjectBytes bounds one PUT body and one part (S3's own limit).
	MaxObjectBytes = 5 << 30
	// MaxParts bounds a multipart upload's parts (S3's own limit).
	MaxParts = 10000
	// MaxListKeys is the most keys one ListObjectsV2 page returns.
	MaxListKeys = 1000
	// maxXMLBody bounds a CompleteMultipartUpload body.
	maxXMLBody = 2 << 20
)

// Server serves a LocalWarehouse as the bucket catalog.LocalBucket
// ("weir") to clients holding credentials its Vendor vended.
type Server struct {
	wh      *catalog.LocalWarehouse
	v       *Vendor
	staging *os.Root // PUT bodies and multipart parts before they are added
	dir     string   // the staging folder's path (hard links need it)
	log     *slog.Logger
	ttl     time.Duration
	// signer recomputes request signatures; one for the server, so its
	// cache of derived signing keys (per secret, day and region) is
	// kept across requests.
	signer *v4.Signer
}

// NewServer returns the endpoint over wh. stagingDir (created, 0700)
// holds bodies being received and multipart uploads in progress; it
// should be on the warehouse's filesystem so that a finished upload is
// hard-linked into place, not copied. Uploads left there over a day are
// removed when the server starts.
func NewServer(wh *catalog.LocalWarehouse, v *Vendor, stagingDir string, log *slog.Logger) (*Server, error) {
	stagingDir, err := filepath.Abs(stagingDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stagingDir, 0o700); err != nil {
		return nil, fmt.Errorf("s3: staging folder: %w", err)
	}
	root, err := os.OpenRoot(stagingDir)
	if err != nil {
		return nil, fmt.Errorf("s3: staging folder: %w", err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Server{wh: wh, v: v, staging: root, dir: stagingDir, log: log, signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })}
	s.sweep(24 * time.Hour)
	return s, nil
}

// Vendor returns the server's credential vendor.
func (s *Server) Vendor() *Vendor { return s.v }

// Close releases the staging folder.
func (s *Server) Close() error { return s.staging.Close() }

// sweep removes staging entries older than age.
func (s *Server) sweep(age time.Duration) {
	ents, err := fs.ReadDir(s.staging.FS(), ".")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > age {
			s.staging.RemoveAll(e.Name())
		}
	}
}

// s3Error is an S3 error response.
type s3Error struct {
	status  int
	code    string
	message string
}

func (e *s3Error) Error() string { return e.code + ": " + e.message }

func s3err(status int, code, msg string) *s3Error { return &s3Error{status, code, msg} }

func denied(format string, a ...any) *s3Error {
	return s3err(http.StatusForbidden, "AccessDenied", fmt.Sprintf(format, a...))
}

// keyError translates what the warehouse said of a key: the one place
// the endpoint turns a confinement error into S3's words.
func keyError(key string, err error) error {
	var se *s3Error
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, catalog.ErrBadLocation):
		return s3err(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("key %q is not a canonical key of this warehouse (no '..', '.', empty segment, '%%', '\\', control character, or over %d bytes)", trunc(key), catalog.MaxLocationLen))
	case errors.Is(err, catalog.ErrOutsideRepo):
		return denied("key %q is outside every repo's folder", trunc(key))
	case errors.Is(err, catalog.ErrExists):
		return denied("key %q exists: files of the warehouse are immutable, write a new key", trunc(key))
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, unixENOTDIR):
		return s3err(http.StatusNotFound, "NoSuchKey", fmt.Sprintf("no key %q", trunc(key)))
	}
	return err
}

func trunc(k string) string {
	if len(k) > 200 {
		return k[:200] + "..."
	}
	return k
}

// ServeHTTP authenticates the request and answers it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	id := make([]byte, 8)
	rand.Read(id)
	reqID := hex.EncodeToString(id)
	w.Header().Set("X-Amz-Request-Id", reqID)
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("s3: panic", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			s.writeError(w, r, reqID, fmt.Errorf("panic: %v", v))
		}
	}()
	if err := s.serve(w, r); err != nil {
		s.writeError(w, r, reqID, err)
	}
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, err error) {
	var e *s3Error
	if !errors.As(err, &e) {
		s.log.Warn("s3: internal error", "method", r.Method, "path", r.URL.Path, "request", reqID, "err", err)
		e = s3err(http.StatusInternalServerError, "InternalError", "internal error (logged on the server as request "+reqID+")")
	} else {
		s.log.Debug("s3: refused", "method", r.Method, "path", r.URL.Path, "code", e.code, "msg", e.message)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(e.status)
		return
	}
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(e.status)
	xml.NewEncoder(w).Encode(struct {
		XMLName   xml.Name `xml:"Error"`
		Code      string
		Message   string
		Resource  string
		RequestID string `xml:"RequestId"`
	}{Code: e.code, Message: e.message, Resource: r.URL.Path, RequestID: reqID})
}

func writeXML(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/xml")
	io.WriteString(w, xml.Header)
	return xml.NewEncoder(w).Encode(v)
}

// serve routes an authenticated request: path-style only,
// /<bucket>/<key>, with the key percent-decoded once (as S3 does) and
// then resolved by the warehouse's one canonicaliser.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) error {
	g, err := s.authenticate(r)
	if err != nil {
		return err
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/")
	if !ok {
		return s3err(http.StatusBadRequest, "InvalidURI", "path must start with '/'")
	}
	bucket, key, _ := strings.Cut(p, "/")
	q := r.URL.Query()
	if bucket == "" {
		if r.Method != http.MethodGet {
			return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", "only GET / (list buckets)")
		}
		return writeXML(w, listBucketsResult{Buckets: []bucketXML{{Name: catalog.LocalBucket, CreationDate: time.Unix(0, 0).UTC().Format(time.RFC3339)}}})
	}
	if bucket != catalog.LocalBucket {
		return s3err(http.StatusNotFound, "NoSuchBucket", fmt.Sprintf("no bucket %q: this endpoint serves the bucket %q, path-style (s3.path-style-access=true)", trunc(bucket), catalog.LocalBucket))
	}
	if key == "" {
		switch {
		case r.Method == http.MethodHead:
			return nil
		case r.Method == http.MethodGet && q.Has("location"):
			return writeXML(w, struct {
				XMLName xml.Name `xml:"LocationConstraint"`
			}{})
		case r.Method == http.MethodGet && q.Get("list-type") == "2":
			return s.list(w, r, g)
		case r.Method == http.MethodGet:
			return s3err(http.StatusNotImplemented, "NotImplemented", "only ListObjectsV2 (list-type=2) lists this bucket")
		}
		return s3err(http.StatusNotImplemented, "NotImplemented", "bucket operations other than list and head are not supported")
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if q.Has("uploadId") {
			return s3err(http.StatusNotImplemented, "NotImplemented", "ListParts is not supported")
		}
		return s.get(w, r, g, key)
	case http.MethodPut:
		if r.Header.Get("X-Amz-Copy-Source") != "" {
			return s3err(http.StatusNotImplemented, "NotImplemented", "copy is not supported: upload the bytes")
		}
		if q.Has("uploadId") {
			return s.uploadPart(w, r, g, key, q.Get("uploadId"), q.Get("partNumber"))
		}
		return s.put(w, r, g, key)
	case http.MethodPost:
		switch {
		case q.Has("uploads"):
			return s.createUpload(w, g, key)
		case q.Has("uploadId"):
			return s.completeUpload(w, r, g, key, q.Get("uploadId"))
		}
		return s3err(http.StatusNotImplemented, "NotImplemented", "POST on a key: only ?uploads and ?uploadId=")
	case http.MethodDelete:
		if q.Has("uploadId") {
			return s.abortUpload(w, g, key, q.Get("uploadId"))
		}
		return s.delete(w, g, key)
	}
	return s3err(http.StatusMethodNotAllowed, "MethodNotAllowed", r.Method+" is not supported")
}

// resolve finds key's repo folder and its path there, refusing, after
// the canonicaliser, keys the grant may not read (or, with write, add).
func (s *Server) resolve(g *grant, key string, write bool) (*catalog.LocalArea, string, error) {
	a, rel, err := s.wh.Bucket(key)
	if err != nil {
		return nil, "", keyError(key, err)
	}
	if !strings.HasPrefix(key, g.readPrefix()) {
		return nil, "", denied("these credentials read only keys under %s", g.readPrefix())
	}
	if write {
		if g.Scope != ScopeWrite {
			return nil, "", denied("these credentials are read-only (a data tag, a commit, or an identity that may not write this branch)")
		}
		if !strings.HasPrefix(key, g.Write) {
			return nil, "", denied("these credentials add keys only under %s", g.Write)
		}
	}
	return a, rel, nil
}

// fileETag names a file's version: its size, modification time and inode.
func fileETag(fi fs.FileInfo) string {
	h := sha256.New()
	fmt.Fprintf(h, "%d %d %v", fi.Size(), fi.ModTime().UnixNano(), inode(fi))
	return `"` + hex.EncodeToString(h.Sum(nil)[:16]) + `"`
}

// get answers GetObject and HeadObject, with Range and conditional
// headers (http.ServeContent).
func (s *Server) get(w http.ResponseWriter, r *http.Request, g *grant, key string) error {
	a, rel, err := s.resolve(g, key, false)
	if err != nil {
		return err
	}
	f, fi, err := a.Open(rel)
	if err != nil {
		return keyError(key, err)
	}
	defer f.Close()
	w.Header().Set("ETag", fileETag(fi))
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Accept-Ranges", "bytes")
	http.ServeContent(w, r, "", fi.ModTime(), f)
	return nil
}

// receive streams r's body into a new staging file, checking its
// X-Amz-Content-Sha256 (when signed) and Content-MD5, and returns the
// file's name in staging and the body's MD5.
func (s *Server) receive(r *http.Request, name string) ([]byte, error) {
	if r.ContentLength > MaxObjectBytes {
		return nil, s3err(http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("a body is at most %d bytes: use a multipart upload", int64(MaxObjectBytes)))
	}
	want := r.Header.Get("X-Amz-Content-Sha256")
	var sum hash.Hash
	switch {
	case want == "UNSIGNED-PAYLOAD":
	case len(want) == 64:
		sum = sha256.New()
	case strings.HasPrefix(want, "STREAMING-"):
		return nil, s3err(http.StatusNotImplemented, "NotImplemented", "aws-chunked uploads ("+want+") are not supported: send the body whole (plain HTTP, or request_checksum_calculation=when_required)")
	default:
		return nil, s3err(http.StatusBadRequest, "InvalidArgument", "bad X-Amz-Content-Sha256")
	}
	f, err := s.staging.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	m := md5.New()
	ws := []io.Writer{f, m}
	if sum != nil {
		ws = append(ws, sum)
	}
	n, err := io.Copy(io.MultiWriter(ws...), io.LimitReader(r.Body, MaxObjectBytes+1))
	if err == nil {
		err = f.Close()
	} else {
		f.Close()
	}
	fail := func(e error) ([]byte, error) { s.staging.Remove(name); return nil, e }
	switch {
	case err != nil:
		return fail(s3err(http.StatusBadRequest, "IncompleteBody", "the body could not be read: "+err.Error()))
	case n > MaxObjectBytes:
		return fail(s3err(http.StatusBadRequest, "EntityTooLarge", fmt.Sprintf("a body is at most %d bytes: use a multipart upload", int64(MaxObjectBytes))))
	case r.ContentLength >= 0 && n != r.ContentLength:
		return fail(s3err(http.StatusBadRequest, "IncompleteBody", "the body is shorter than its Content-Length"))
	case sum != nil && hex.EncodeToString(sum.Sum(nil)) != want:
		return fail(s3err(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "the body's SHA-256 is not X-Amz-Content-Sha256"))
	}
	if cm := r.Header.Get("Content-Md5"); cm != "" && cm != base64.StdEncoding.EncodeToString(m.Sum(nil)) {
		return fail(s3err(http.StatusBadRequest, "BadDigest", "the body's MD5 is not Content-MD5"))
	}
	return m.Sum(nil), nil
}

func newID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// put answers PutObject: a new key only.
func (s *Server) put(w http.ResponseWriter, r *http.Request, g *grant, key string) error {
	a, rel, err := s.resolve(g, key, true)
	if err != nil {
		return err
	}
	if _, err := a.Stat(rel); err == nil {
		return keyError(key, catalog.ErrExists)
	}
	name := "put-" + newID()
	if _, err := s.receive(r, name); err != nil {
		return err
	}
	defer s.staging.Remove(name)
	return s.add(w, a, rel, key, name)
}

// add links the staging file name in as the key, and answers its ETag.
func (s *Server) add(w http.ResponseWriter, a *catalog.LocalArea, rel, key, name string) error {
	if err := a.AddNew(path.Join(s.dir, name), rel); err != nil {
		return keyError(key, err)
	}
	fi, err := a.Stat(rel)
	if err != nil {
		return keyError(key, err)
	}
	s.log.Info("s3: key added", "repo", a.Seg(), "key", key, "bytes", fi.Size())
	w.Header().Set("ETag", fileETag(fi))
	return nil
}

// delete answers DeleteObject. No credential deletes a file: a table's
// history may name any of them (other branches, tags, data commits).
// Deleting a key that does not exist succeeds, as on S3.
func (s *Server) delete(w http.ResponseWriter, g *grant, key string) error {
	a, rel, err := s.resolve(g, key, true)
	if err != nil {
		return err
	}
	if _, err := a.Stat(rel); err == nil {
		return denied("files of the warehouse are never deleted through this endpoint: data history (other branches, tags, commits) may name %q", trunc(key))
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// list answers ListObjectsV2: prefix, delimiter, start-after,
// continuation-token, max-keys, encoding-type=url.
func (s *Server) list(w http.ResponseWriter, r *http.Request, g *grant) error {
	q := r.URL.Query()
	pre, delim := q.Get("prefix"), q.Get("delimiter")
	if !strings.HasPrefix(pre, g.readPrefix()) {
		return denied("these credentials list only keys under %s: give --prefix %s...", g.readPrefix(), g.readPrefix())
	}
	max := MaxListKeys
	if v := q.Get("max-keys"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return s3err(http.StatusBadRequest, "InvalidArgument", "max-keys is not a non-negative number")
		}
		max = min(n, MaxListKeys)
	}
	after := q.Get("start-after")
	skipPrefix := ""
	if t := q.Get("continuation-token"); t != "" {
		raw, err := base64.RawURLEncoding.DecodeString(t)
		if err != nil || len(raw) < 2 {
			return s3err(http.StatusBadRequest, "InvalidArgument", "bad continuation-token: pass NextContinuationToken as it was")
		}
		if raw[0] == 'p' {
			skipPrefix = string(raw[1:])
		}
		after = max2(after, string(raw[1:]))
	}
	var a *catalog.LocalArea
	var dir string
	dirKey := pre[:strings.LastIndexByte(pre, '/')]
	var err error
	if dirKey == g.Repo {
		a, err = s.wh.RepoArea(g.Repo)
	} else {
		a, dir, err = s.wh.Bucket(dirKey)
	}
	if err != nil {
		return keyError(pre, err)
	}
	var keys []string
	size := map[string]catalog.FileInfo{}
	err = a.Walk(dir, func(fi catalog.FileInfo) error {
		k := g.Repo + "/" + fi.Rel
		if strings.HasPrefix(k, pre) && k > after && (skipPrefix == "" || !strings.HasPrefix(k, skipPrefix)) {
			keys = append(keys, k)
			size[k] = fi
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(keys)
	enc := func(s string) string { return s }
	if q.Get("encoding-type") == "url" {
		enc = url.QueryEscape
	}
	out := listV2Result{Name: catalog.LocalBucket, Prefix: enc(pre), Delimiter: enc(delim), MaxKeys: max, StartAfter: enc(q.Get("start-after")), ContinuationToken: q.Get("continuation-token")}
	if q.Get("encoding-type") == "url" {
		out.EncodingType = "url"
	}
	n, last, lastIsPrefix := 0, "", false
	for i := 0; i < len(keys); i++ {
		k := keys[i]
		if n == max {
			out.IsTruncated = true
			kind := "k"
			if lastIsPrefix {
				kind = "p"
			}
			out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(kind + last))
			break
		}
		if delim != "" {
			if j := strings.Index(k[len(pre):], delim); j >= 0 {
				cp := k[:len(pre)+j+len(delim)]
				out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{enc(cp)})
				for i+1 < len(keys) && strings.HasPrefix(keys[i+1], cp) {
					i++
				}
				n, last, lastIsPrefix = n+1, cp, true
				continue
			}
		}
		fi := size[k]
		out.Contents = append(out.Contents, objectXML{Key: enc(k), LastModified: fi.ModTime().UTC().Format(time.RFC3339Nano), ETag: fileETag(fi), Size: fi.Size(), StorageClass: "STANDARD"})
		n, last, lastIsPrefix = n+1, k, false
	}
	out.KeyCount = n
	return writeXML(w, out)
}

func max2(a, b string) string {
	if a > b {
		return a
	}
	return b
}

type listBucketsResult struct {
	XMLName xml.Name    `xml:"ListAllMyBucketsResult"`
	Xmlns   string      `xml:"xmlns,attr,omitempty"`
	Buckets []bucketXML `xml:"Buckets>Bucket"`
}

type bucketXML struct {
	Name         string
	CreationDate string
}

type listV2Result struct {
	XMLName               xml.Name `xml:"ListBucketResult"`
	Name                  string
	Prefix                string
	Delimiter             string `xml:",omitempty"`
	StartAfter            string `xml:",omitempty"`
	ContinuationToken     string `xml:",omitempty"`
	NextContinuationToken string `xml:",omitempty"`
	EncodingType          string `xml:",omitempty"`
	KeyCount              int
	MaxKeys               int
	IsTruncated           bool
	Contents              []objectXML
	CommonPrefixes        []commonPrefix
}

type objectXML struct {
	Key          string
	LastModified string
	ETag         string
	Size         int64
	StorageClass string
}

type commonPrefix struct{ Prefix string }
