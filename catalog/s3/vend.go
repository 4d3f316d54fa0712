package s3

import (
	"strconv"
	"time"

	"github.com/apache/iceberg-go"
	icebergio "github.com/apache/iceberg-go/io"

	"github.com/weir-dev/weir/objects"
)

// Region is the region the endpoint answers to (any region a client
// signs with is accepted; this is the one vended).
const Region = "us-east-1"

// PathStyleAccess is the property Java and Python Iceberg clients read
// for path-style addressing (iceberg-go uses path style whenever an
// endpoint is set and s3.force-virtual-addressing is not true).
const PathStyleAccess = "s3.path-style-access"

// TableProps returns the FileIO properties a client of the table at
// location (a table's location, s3://weir/<repo>/<ns>/<table>) in repo
// needs to reach its files through the endpoint at endpointURL: the
// endpoint, path-style addressing, the region, and fresh credentials
// (DefaultTTL) that read every key of repo and, when write is set, add
// new keys under the table's location. ok is false when the table's
// files are not named s3://weir/ (a table created with file:// locations
// is read by local readers only).
func (s *Server) TableProps(endpointURL string, repo objects.RepoName, location string, write bool) (props iceberg.Properties, ok bool, err error) {
	key, ok := s.wh.S3Key(repo, location)
	if !ok {
		return nil, false, nil
	}
	seg, _, _ := cut(key)
	scope, prefix := ScopeRead, ""
	if write {
		scope, prefix = ScopeWrite, key+"/"
	}
	c, err := s.v.Vend(seg, scope, prefix, s.ttl)
	if err != nil {
		return nil, false, err
	}
	return iceberg.Properties{
		icebergio.S3EndpointURL:            endpointURL,
		PathStyleAccess:                    "true",
		icebergio.S3ForceVirtualAddressing: "false",
		icebergio.S3Region:                 Region,
		icebergio.S3AccessKeyID:            c.AccessKeyID,
		icebergio.S3SecretAccessKey:        c.SecretAccessKey,
		icebergio.S3SessionToken:           c.SessionToken,
		"s3.session-token-expires-at-ms":   strconv.FormatInt(c.Expires.UnixMilli(), 10),
		"client.region":                    Region,
	}, true, nil
}

// SetTTL sets how long vended credentials live (default DefaultTTL).
func (s *Server) SetTTL(d time.Duration) { s.ttl = d }

func cut(key string) (string, string, bool) {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i], key[i+1:], true
		}
	}
	return key, "", false
}
