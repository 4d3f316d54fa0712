package s3

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// MaxClockSkew is how far a request's X-Amz-Date may be from the
// server's clock (as S3's 15 minutes).
const MaxClockSkew = 15 * time.Minute

// sigv4 is a parsed "Authorization: AWS4-HMAC-SHA256 ..." header.
type sigv4 struct {
	accessKeyID, date, region, service string
	signedHeaders                      []string
	signature                          string
}

func parseAuthorization(h string) (sigv4, bool) {
	var s sigv4
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return s, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return s, false
		}
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return s, false
			}
			s.accessKeyID, s.date, s.region, s.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			s.signedHeaders = strings.Split(v, ";")
		case "Signature":
			s.signature = v
		}
	}
	return s, s.accessKeyID != "" && len(s.signedHeaders) > 0 && s.signature != "" && s.service == "s3"
}

// authenticate checks r's SigV4 signature against the credentials its
// session token names and returns the token's grant. The signature is
// recomputed with aws-sdk-go-v2's own signer over a copy of r holding
// only the headers r signed, and compared in constant time.
func (s *Server) authenticate(r *http.Request) (*grant, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if r.URL.Query().Get("X-Amz-Algorithm") != "" {
			return nil, s3err(http.StatusForbidden, "AccessDenied", "presigned URLs are not accepted: sign each request (Authorization header) with the credentials the REST catalog vended")
		}
		return nil, s3err(http.StatusForbidden, "AccessDenied", "anonymous access is not allowed: sign requests with the credentials a table load on the REST catalog vends (s3.access-key-id, s3.secret-access-key, s3.session-token)")
	}
	a, ok := parseAuthorization(h)
	if !ok {
		return nil, s3err(http.StatusBadRequest, "AuthorizationHeaderMalformed", "the Authorization header is not AWS4-HMAC-SHA256 with Credential=<id>/<date>/<region>/s3/aws4_request, SignedHeaders and Signature")
	}
	tok := r.Header.Get("X-Amz-Security-Token")
	if tok == "" {
		return nil, s3err(http.StatusForbidden, "InvalidToken", "no session token (X-Amz-Security-Token): send the s3.session-token the REST catalog vended with its key")
	}
	g, secret, err := s.v.check(tok, a.accessKeyID)
	switch err {
	case nil:
	case errExpired:
		return nil, s3err(http.StatusBadRequest, "ExpiredToken", err.Error())
	case errKeyID:
		return nil, s3err(http.StatusForbidden, "InvalidAccessKeyId", err.Error())
	default:
		return nil, s3err(http.StatusForbidden, "InvalidToken", err.Error())
	}
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return nil, s3err(http.StatusForbidden, "AccessDenied", "no valid X-Amz-Date header (want 20060102T150405Z)")
	}
	if d := s.v.now().Sub(t); d > MaxClockSkew || d < -MaxClockSkew {
		return nil, s3err(http.StatusForbidden, "RequestTimeTooSkewed", "the request's time is more than 15 minutes from the server's: check the client's clock")
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, s3err(http.StatusBadRequest, "InvalidRequest", "missing X-Amz-Content-Sha256")
	}
	c := &http.Request{
		Method: r.Method,
		URL:    &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Host:   r.Host,
		Header: http.Header{},
	}
	for _, name := range a.signedHeaders {
		switch name {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			k := textproto.CanonicalMIMEHeaderKey(name)
			c.Header[k] = r.Header.Values(k)
		}
	}
	creds := aws.Credentials{AccessKeyID: a.accessKeyID, SecretAccessKey: secret, SessionToken: tok}
	err = s.signer.SignHTTP(context.Background(), creds, c, payload, "s3", a.region, t)
	if err != nil {
		return nil, s3err(http.StatusForbidden, "SignatureDoesNotMatch", "the signature could not be computed: "+err.Error())
	}
	want, ok := parseAuthorization(c.Header.Get("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(want.signature), []byte(a.signature)) != 1 {
		return nil, s3err(http.StatusForbidden, "SignatureDoesNotMatch", "the request signature does not match: sign with the s3.secret-access-key vended together with this access key id")
	}
	return g, nil
}
