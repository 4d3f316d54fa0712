// Package e2e holds Weir's end-to-end tests: they build cmd/weir once,
// start "weir serve" on random loopback ports with a temporary data
// directory, and drive it with real clients: C git over smart HTTP and SSH,
// OpenSSH, dulwich (a second Git implementation, in Python), and headless
// Chromium for the web view (TestWebView; skipped without Debian's
// chromium).
//
// Nothing here is imported by the product; the package has no non-test
// code. Run with: go test ./e2e/ (about a minute on two cores).
package e2e
