package s3

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Scope is what a vended credential may do.
type Scope string

const (
	// ScopeRead reads (GET, HEAD, list) every key under the repo's prefix.
	ScopeRead Scope = "read"
	// ScopeWrite also adds new keys (PUT, multipart upload) under one
	// table's location; it never overwrites or deletes a key.
	ScopeWrite Scope = "write"
)

// DefaultTTL is how long a vended credential lives.
const DefaultTTL = time.Hour

// Credentials are what a client signs requests with: an access key id, a
// secret key and a session token (the signed grant itself), and when
// they expire.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expires         time.Time
}

// grant is what a session token carries, MACed by the server's secret.
type grant struct {
	V     int    `json:"v"`
	Repo  string `json:"r"`           // the repo's folder (first key segment)
	Scope Scope  `json:"s"`           // read or write
	Write string `json:"w,omitempty"` // key prefix of new keys, ending in '/'; only with ScopeWrite
	Exp   int64  `json:"e"`           // unix seconds
	N     string `json:"n"`           // random: two grants never share keys
}

// readPrefix is the key prefix the grant reads.
func (g *grant) readPrefix() string { return g.Repo + "/" }

// Vendor mints and checks credentials with a secret of the server. It
// is stateless: a credential is a grant signed with HMAC-SHA256, and its
// secret key is an HMAC of the grant, so nothing is stored per
// credential and none can be revoked before it expires (rotate the
// secret file to revoke them all). The only memory it keeps is a bounded
// cache of tokens it has verified, to spare a reader's hundreds of
// requests the MAC check and decoding of the same token.
type Vendor struct {
	keyToken, keyID, keySecret []byte
	now                        func() time.Time

	// seen holds tokens already verified (their MAC checked and grant
	// decoded), so that the requests of one reader, hundreds a second
	// for an engine reading row groups, verify a token once. An entry
	// is the token's grant and keys, which are fixed by the token's
	// bytes; expiry and the access key id are still checked on every
	// request. At most maxSeen entries: when full, it is emptied.
	mu   sync.Mutex
	seen map[string]seenToken
}

// maxSeen bounds Vendor.seen: at most 4096 tokens of at most 4 KiB.
const maxSeen = 4096

type seenToken struct {
	g          *grant
	id, secret string
}

// SecretFile is the name of the server's vending secret in the data dir.
const SecretFile = "s3-vending.key"

// OpenVendor loads the secret from dataDir/SecretFile, creating it (32
// random bytes, mode 0600) when it does not exist.
func OpenVendor(dataDir string) (*Vendor, error) {
	p := filepath.Join(dataDir, SecretFile)
	raw, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		k := make([]byte, 32)
		rand.Read(k)
		f, cerr := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if cerr == nil {
			_, cerr = f.Write([]byte(hex.EncodeToString(k) + "\n"))
			if err1 := f.Close(); cerr == nil {
				cerr = err1
			}
		}
		if cerr != nil && !errors.Is(cerr, os.ErrExist) {
			return nil, fmt.Errorf("s3: create %s: %w", p, cerr)
		}
		raw, err = os.ReadFile(p)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: read %s: %w", p, err)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("s3: %s is readable by others (mode %v): chmod 600 it", p, fi.Mode().Perm())
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil || len(k) < 32 {
		return nil, fmt.Errorf("s3: %s is not 32 hex-encoded bytes: remove it and a new one is made (every credential vended so far stops working)", p)
	}
	return NewVendor(k), nil
}

// NewVendor returns a vendor with the secret key (at least 32 bytes).
func NewVendor(key []byte) *Vendor {
	d := func(label string) []byte { return mac(key, []byte(label)) }
	return &Vendor{keyToken: d("weir-s3 token"), keyID: d("weir-s3 access key id"), keySecret: d("weir-s3 secret key"), now: time.Now, seen: map[string]seenToken{}}
}

func mac(key, msg []byte) []byte {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return h.Sum(nil)
}

var b64 = base64.RawURLEncoding

// Vend returns credentials of scope for repo's folder seg: reading every
// key under seg/, and with ScopeWrite adding new keys under writePrefix
// (a key prefix, "seg/ns/table/", that must lie under seg/). ttl <= 0
// means DefaultTTL.
func (v *Vendor) Vend(seg string, scope Scope, writePrefix string, ttl time.Duration) (Credentials, error) {
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if seg == "" || strings.Contains(seg, "/") {
		return Credentials{}, fmt.Errorf("s3: bad repo folder %q", seg)
	}
	g := grant{V: 1, Repo: seg, Scope: scope}
	switch scope {
	case ScopeRead:
	case ScopeWrite:
		if !strings.HasPrefix(writePrefix, seg+"/") || !strings.HasSuffix(writePrefix, "/") || len(writePrefix) <= len(seg)+1 {
			return Credentials{}, fmt.Errorf("s3: write prefix %q is not a folder under %s/", writePrefix, seg)
		}
		g.Write = writePrefix
	default:
		return Credentials{}, fmt.Errorf("s3: unknown scope %q", scope)
	}
	exp := v.now().Add(ttl).Truncate(time.Second)
	g.Exp = exp.Unix()
	n := make([]byte, 12)
	rand.Read(n)
	g.N = b64.EncodeToString(n)
	body, err := json.Marshal(g)
	if err != nil {
		return Credentials{}, err
	}
	tok := b64.EncodeToString(body) + "." + b64.EncodeToString(mac(v.keyToken, body))
	id, secret := v.keys(tok)
	return Credentials{AccessKeyID: id, SecretAccessKey: secret, SessionToken: tok, Expires: exp}, nil
}

// keys derives a token's access key id and secret key.
func (v *Vendor) keys(tok string) (id, secret string) {
	id = "WEIR" + base32.StdEncoding.EncodeToString(mac(v.keyID, []byte(tok))[:10])
	secret = base64.StdEncoding.EncodeToString(mac(v.keySecret, []byte(tok)))[:40]
	return id, secret
}

// Errors of a credential check; each is an S3 error code's cause.
var (
	errBadToken = errors.New("the session token is not one this server vended (or it was altered): load the table again for fresh credentials")
	errExpired  = errors.New("the credentials have expired: load the table again through the REST catalog for fresh ones")
	errKeyID    = errors.New("the access key id does not belong to the session token: use the three values the REST catalog vended together")
)

// check verifies a session token and that accessKeyID is its own, and
// returns its grant and secret key.
func (v *Vendor) check(tok, accessKeyID string) (*grant, string, error) {
	if len(tok) > 4096 {
		return nil, "", errBadToken
	}
	v.mu.Lock()
	st, ok := v.seen[tok]
	v.mu.Unlock()
	if !ok {
		g, err := v.verify(tok)
		if err != nil {
			return nil, "", err
		}
		st.g = g
		st.id, st.secret = v.keys(tok)
		v.mu.Lock()
		if len(v.seen) >= maxSeen {
			clear(v.seen)
		}
		v.seen[tok] = st
		v.mu.Unlock()
	}
	if v.now().Unix() >= st.g.Exp {
		return nil, "", errExpired
	}
	if !hmac.Equal([]byte(st.id), []byte(accessKeyID)) {
		return nil, "", errKeyID
	}
	return st.g, st.secret, nil
}

// verify checks a token's MAC and decodes its grant.
func (v *Vendor) verify(tok string) (*grant, error) {
	body64, sig64, ok := strings.Cut(tok, ".")
	if !ok {
		return nil, errBadToken
	}
	body, err1 := b64.DecodeString(body64)
	sig, err2 := b64.DecodeString(sig64)
	if err1 != nil || err2 != nil || !hmac.Equal(sig, mac(v.keyToken, body)) {
		return nil, errBadToken
	}
	var g grant
	if err := json.Unmarshal(body, &g); err != nil || g.V != 1 || g.Repo == "" {
		return nil, errBadToken
	}
	return &g, nil
}
