// Command cgishim serves "git http-backend" over HTTP with net/http/cgi:
// the peer that bench/gitproto/run.sh compares weir's smart HTTP with.
//
//	cgishim ADDR PROJECT_ROOT
//
// It prints "listening http://HOST:PORT" once the listener is up.
package main

import (
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: cgishim ADDR PROJECT_ROOT")
	}
	git, err := exec.LookPath("git")
	if err != nil {
		log.Fatal(err)
	}
	h := &cgi.Handler{
		Path: git,
		Args: []string{"http-backend"},
		Env:  []string{"GIT_PROJECT_ROOT=" + os.Args[2], "GIT_HTTP_EXPORT_ALL=1"},
	}
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("listening http://%s\n", l.Addr())
	log.Fatal(http.Serve(l, h))
}
