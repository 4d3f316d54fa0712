package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/apache/iceberg-go"

	"github.com/weir-dev/weir/catalog"
	s3ep "github.com/weir-dev/weir/catalog/s3"
	"github.com/weir-dev/weir/objects"
)

// s3Flags configure the S3 endpoint that serves the local warehouse.
type s3Flags struct {
	addr, url string
	ttl       time.Duration
}

func (f *s3Flags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "s3", "127.0.0.1:7424", "S3 endpoint listen address serving the local warehouse to Iceberg readers, with credentials the REST catalog vends per table (empty: off; new tables then get file:// locations). Off with an S3 --warehouse")
	fs.StringVar(&f.url, "s3-url", "", "URL of the S3 endpoint as readers reach it, vended as s3.endpoint (default http://<--s3 address>)")
	fs.DurationVar(&f.ttl, "s3-credential-ttl", s3ep.DefaultTTL, "how long credentials vended for the S3 endpoint live, at least (up to a quarter more: loads of a table within one quarter of it get the same credentials, so its ETag holds)")
}

// s3Endpoint is the running S3 endpoint, when there is one.
type s3Endpoint struct {
	srv *s3ep.Server
	ln  net.Listener
	url string
	web *http.Server
}

// localWarehouseOptions: with the endpoint on, new tables of the local
// warehouse get s3://weir/ locations (catalog.WithS3Names).
func (a *serveApp) localWarehouseOptions() []catalog.LocalOption {
	if a.Config.s3.addr == "" {
		return nil
	}
	return []catalog.LocalOption{catalog.WithS3Names()}
}

// listenS3 binds --s3 and builds the endpoint over the local warehouse,
// with the vending secret of the data dir.
func (a *serveApp) listenS3() (err error) {
	lw, ok := a.Catalog.Warehouse().(*catalog.LocalWarehouse)
	if a.Config.s3.addr == "" || !ok {
		if a.Config.s3.addr != "" {
			a.Logger.Info("s3 endpoint off: the warehouse is in S3 already", "warehouse", a.Catalog.Warehouse().Root())
		}
		return nil
	}
	v, err := s3ep.OpenVendor(a.DataDir)
	if err != nil {
		return err
	}
	srv, err := s3ep.NewServer(lw, v, filepath.Join(a.DataDir, "s3-staging"), a.Logger)
	if err != nil {
		return err
	}
	srv.SetTTL(a.Config.s3.ttl)
	a.closers = append(a.closers, srv.Close)
	ln, err := net.Listen("tcp", a.Config.s3.addr)
	if err != nil {
		return fmt.Errorf("--s3: %w", err)
	}
	a.closers = append(a.closers, ignoreClosed(ln.Close))
	u := a.Config.s3.url
	if u == "" {
		u = "http://" + ln.Addr().String()
	}
	a.s3 = &s3Endpoint{srv: srv, ln: ln, url: u}
	return nil
}

// tableCredentials vends per-table credentials for the endpoint.
func (e *s3Endpoint) tableCredentials(repo objects.RepoName, location string, write bool) (iceberg.Properties, bool, error) {
	return e.srv.TableProps(e.url, repo, location, write)
}

// serve starts serving; errors go to errc.
func (e *s3Endpoint) serve(log *slog.Logger, errc chan<- error) {
	e.web = &http.Server{Handler: e.srv, ReadHeaderTimeout: 30 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := e.web.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("s3: %w", err)
		}
	}()
}

func (e *s3Endpoint) shutdown(ctx context.Context) {
	if e.web != nil && e.web.Shutdown(ctx) != nil {
		e.web.Close()
	}
}
