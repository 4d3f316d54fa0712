package s3

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/catalog"
)

// Multipart uploads live in the staging folder until completed:
//
//	mpu-<id>/key         the key the upload was created for
//	mpu-<id>/part-<n>    part n's bytes (n = 1..MaxParts)
//	mpu-<id>/part-<n>.md5  its MD5, hex (the part's ETag)
//
// <id> is 32 hex digits the server chose; any other upload id is refused
// before it names a file. Completing concatenates the listed parts into
// one staging file that is added like a PUT body (a new key only).

func uploadDir(id string) (string, error) {
	if len(id) != 32 {
		return "", s3err(http.StatusNotFound, "NoSuchUpload", "no such upload id")
	}
	if _, err := hex.DecodeString(id); err != nil || strings.ToLower(id) != id {
		return "", s3err(http.StatusNotFound, "NoSuchUpload", "no such upload id")
	}
	return "mpu-" + id, nil
}

// upload checks that upload id exists and was created for key.
func (s *Server) upload(id, key string) (string, error) {
	dir, err := uploadDir(id)
	if err != nil {
		return "", err
	}
	k, err := s.staging.ReadFile(dir + "/key")
	if err != nil || string(k) != key {
		return "", s3err(http.StatusNotFound, "NoSuchUpload", "no upload "+id+" for this key (completed, aborted, or never created)")
	}
	return dir, nil
}

func (s *Server) createUpload(w http.ResponseWriter, g *grant, key string) error {
	a, rel, err := s.resolve(g, key, true)
	if err != nil {
		return err
	}
	if _, err := a.Stat(rel); err == nil {
		return keyError(key, catalog.ErrExists)
	}
	id := newID()
	dir := "mpu-" + id
	if err := s.staging.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if err := s.staging.WriteFile(dir+"/key", []byte(key), 0o600); err != nil {
		return err
	}
	return writeXML(w, struct {
		XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
		Bucket   string
		Key      string
		UploadID string `xml:"UploadId"`
	}{Bucket: catalog.LocalBucket, Key: key, UploadID: id})
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, g *grant, key, id, num string) error {
	if _, _, err := s.resolve(g, key, true); err != nil {
		return err
	}
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 || n > MaxParts {
		return s3err(http.StatusBadRequest, "InvalidArgument", fmt.Sprintf("partNumber must be 1 to %d", MaxParts))
	}
	dir, err := s.upload(id, key)
	if err != nil {
		return err
	}
	tmp := dir + "/tmp-" + newID()
	sum, err := s.receive(r, tmp)
	if err != nil {
		return err
	}
	part := fmt.Sprintf("%s/part-%d", dir, n)
	if err := s.staging.Rename(tmp, part); err != nil {
		s.staging.Remove(tmp)
		return err
	}
	etag := hex.EncodeToString(sum)
	if err := s.staging.WriteFile(part+".md5", []byte(etag), 0o600); err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+etag+`"`)
	return nil
}

type completeRequest struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber int
		ETag       string
	} `xml:"Part"`
}

func (s *Server) completeUpload(w http.ResponseWriter, r *http.Request, g *grant, key, id string) error {
	a, rel, err := s.resolve(g, key, true)
	if err != nil {
		return err
	}
	dir, err := s.upload(id, key)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxXMLBody+1))
	if err != nil || len(body) > maxXMLBody {
		return s3err(http.StatusBadRequest, "MalformedXML", "the CompleteMultipartUpload body could not be read, or is over 2 MiB")
	}
	if want := r.Header.Get("X-Amz-Content-Sha256"); len(want) == 64 {
		if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != want {
			return s3err(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "the body's SHA-256 is not X-Amz-Content-Sha256")
		}
	}
	var req completeRequest
	if err := xml.Unmarshal(body, &req); err != nil {
		return s3err(http.StatusBadRequest, "MalformedXML", "the CompleteMultipartUpload body is not valid XML: "+err.Error())
	}
	if len(req.Parts) == 0 || len(req.Parts) > MaxParts {
		return s3err(http.StatusBadRequest, "MalformedXML", fmt.Sprintf("name 1 to %d parts", MaxParts))
	}
	name := dir + "/object"
	out, err := s.staging.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	defer s.staging.Remove(name)
	prev := 0
	for _, p := range req.Parts {
		if p.PartNumber <= prev {
			out.Close()
			return s3err(http.StatusBadRequest, "InvalidPartOrder", "list parts in ascending order, each once")
		}
		prev = p.PartNumber
		part := fmt.Sprintf("%s/part-%d", dir, p.PartNumber)
		etag, err := s.staging.ReadFile(part + ".md5")
		if err != nil || strings.Trim(p.ETag, `"`) != string(etag) {
			out.Close()
			return s3err(http.StatusBadRequest, "InvalidPart", fmt.Sprintf("part %d was not uploaded, or its ETag is not %s", p.PartNumber, p.ETag))
		}
		in, err := s.staging.Open(part)
		if err != nil {
			out.Close()
			return err
		}
		m := md5.New()
		_, err = io.Copy(io.MultiWriter(out, m), in)
		in.Close()
		if err != nil {
			out.Close()
			return err
		}
		if hex.EncodeToString(m.Sum(nil)) != string(etag) {
			out.Close()
			return s3err(http.StatusBadRequest, "InvalidPart", fmt.Sprintf("part %d changed on disk", p.PartNumber))
		}
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := s.add(w, a, rel, key, name); err != nil {
		return err
	}
	s.staging.RemoveAll(dir)
	return writeXML(w, struct {
		XMLName  xml.Name `xml:"CompleteMultipartUploadResult"`
		Location string
		Bucket   string
		Key      string
		ETag     string
	}{Location: "/" + path.Join(catalog.LocalBucket, key), Bucket: catalog.LocalBucket, Key: key, ETag: w.Header().Get("ETag")})
}

func (s *Server) abortUpload(w http.ResponseWriter, g *grant, key, id string) error {
	if _, _, err := s.resolve(g, key, true); err != nil {
		return err
	}
	dir, err := s.upload(id, key)
	if err != nil {
		return err
	}
	if err := s.staging.RemoveAll(dir); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
