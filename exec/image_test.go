package exec_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/weir-dev/weir/exec"
)

// probe is what this test binary does when a sandbox runs it as the
// runner with WEIR_EXEC_TEST_PROBE set: it prints its uid map, the root's
// entries and whether it may write into the image, one per line.
func probe() {
	b, err := os.ReadFile("/proc/self/uid_map")
	fmt.Printf("uid_map %s %v\n", strings.Join(strings.Fields(string(b)), " "), err)
	ents, _ := os.ReadDir("/")
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	fmt.Printf("root %s\n", strings.Join(names, " "))
	if b, err := os.ReadFile("/data/hello"); err == nil {
		fmt.Printf("hello %s\n", strings.TrimSpace(string(b)))
	}
	if err := os.WriteFile(writeProbe(), []byte("x"), 0o644); err != nil {
		fmt.Println("write refused")
	} else {
		fmt.Println("write ALLOWED")
	}
	fmt.Printf("in %v out %v\n", isDir(exec.InputsDir), isDir(exec.OutputDir))
	os.Exit(0)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// userNamespaces says whether this kernel gives sandboxes a user namespace.
func userNamespaces() bool {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	return err == nil && strings.TrimSpace(string(b)) != "0"
}

// runtimeSandboxes is a Sandboxes with the given runtimes, its state dir
// under /tmp (searchable by the user namespace's root, as weir serve's
// /run/weir is).
func runtimeSandboxes(t *testing.T, runtimes map[string]string) *exec.Sandboxes {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	dir, err := os.MkdirTemp("", "weir-exec-rt-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s, err := exec.New(exec.Config{StateDir: dir, Runtimes: runtimes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestRuntimeWithoutLibcOrMountPoints: an image that is one folder with one
// file (no /proc, /in, /out, /tmp, /weir, no C library, no loader), under
// a 0700 parent, runs the runner under the user namespace; nothing is
// written into the image.
func TestRuntimeWithoutLibcOrMountPoints(t *testing.T) {
	image := filepath.Join(t.TempDir(), "image") // t.TempDir is 0700
	if err := os.MkdirAll(filepath.Join(image, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(image, "data", "hello"), "from the image\n")
	s := runtimeSandboxes(t, map[string]string{"bare": image})
	res, err := s.Run(context.Background(), exec.Spec{ID: "bare", Runtime: "bare", Weir: true,
		Env: []string{"WEIR_EXEC_TEST_PROBE=1"}, Args: []string{exec.RunnerPath}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != exec.ReasonOK {
		t.Fatalf("got %s", explain(res))
	}
	out := string(res.Output)
	wantMap := "uid_map 0 1048576 65536 <nil>\n"
	if !userNamespaces() {
		wantMap = "uid_map 0 0 4294967295 <nil>\n"
	}
	for _, want := range []string{wantMap, "root data dev in out proc sys tmp weir\n", "hello from the image\n", "write refused\n", "in true out true\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ents, _ := os.ReadDir(image)
	if len(ents) != 1 {
		t.Errorf("the image changed: %v", ents)
	}
}

// TestRuntimeOwnLibc runs a node's program with the image's own C library
// (a minimal rootfs of dash, libc and the loader, without /proc or /in):
// the runner's host libraries under /weir/lib are not on its path.
func TestRuntimeOwnLibc(t *testing.T) {
	root := filepath.Join(t.TempDir(), "mini")
	for _, f := range []string{"/usr/bin/dash", "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skipf("no %s to build a runtime from", f)
		}
		dst := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	s := runtimeSandboxes(t, map[string]string{"mini": root})
	res, err := s.Run(context.Background(), exec.Spec{ID: "mini", Runtime: "mini", Env: []string{"PATH=/usr/bin"},
		Args: []string{"dash", "-c", "echo /usr/bin/*; read a b c < /proc/self/uid_map; echo map $a $b $c; echo x > /usr/evil || echo ro; echo x > /tmp/t && echo tmp ok"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "/usr/bin/dash\nmap 0 1048576 65536\n"
	if !userNamespaces() {
		want = "/usr/bin/dash\nmap 0 0 4294967295\n"
	}
	if res.Reason != exec.ReasonOK || !strings.HasPrefix(string(res.Output), want) || !strings.HasSuffix(string(res.Output), "ro\ntmp ok\n") {
		t.Errorf("got %s", explain(res))
	}
	if _, err := os.Stat(filepath.Join(root, "usr", "evil")); err == nil {
		t.Error("node wrote into the runtime's rootfs")
	}
	for _, d := range []string{"proc", "in", "tmp", "weir"} {
		if _, err := os.Stat(filepath.Join(root, d)); err == nil {
			t.Errorf("/%s was created in the image", d)
		}
	}
}

// TestRuntimeNameRefused: a runtime's name becomes a folder name and a
// word in weir.toml: anything else is refused at New.
func TestRuntimeNameRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("sandboxes need root")
	}
	for _, name := range []string{"host", "../x", "Pandas", "a b"} {
		_, err := exec.New(exec.Config{StateDir: t.TempDir(), Runtimes: map[string]string{name: t.TempDir()}})
		if err == nil {
			t.Errorf("%q: accepted", name)
		}
	}
}

// TestRuntimeDebianImage runs Python with pandas in a Debian rootfs built
// by weir runtime build (test.sh passes its folder in
// WEIR_TEST_RUNTIME_PANDAS), under the user namespace, with the runner
// started beside it.
func TestRuntimeDebianImage(t *testing.T) {
	image := os.Getenv("WEIR_TEST_RUNTIME_PANDAS")
	if image == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set (test.sh builds the pandas runtime and sets it)")
	}
	s := runtimeSandboxes(t, map[string]string{"pandas": image})
	res, err := s.Run(context.Background(), exec.Spec{ID: "pandas", Runtime: "pandas", Env: []string{"PATH=/usr/bin:/bin"},
		Args: []string{"python3", "-c", "import pandas, sys; print(open('/proc/self/uid_map').read().split()); print(sys.prefix, pandas.DataFrame({'a': [1, 2]}).a.sum())"}})
	if err != nil {
		t.Fatal(err)
	}
	want := "['0', '1048576', '65536']\n/usr 3\n"
	if !userNamespaces() {
		want = "['0', '0', '4294967295']\n/usr 3\n"
	}
	if res.Reason != exec.ReasonOK || string(res.Output) != want {
		t.Errorf("got %s", explain(res))
	}
	res, err = s.Run(context.Background(), exec.Spec{ID: "pandas-runner", Runtime: "pandas", Weir: true,
		Env: []string{"WEIR_EXEC_TEST_PROBE=1"}, Args: []string{exec.RunnerPath}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != exec.ReasonOK || !strings.Contains(string(res.Output), "write refused\n") {
		t.Errorf("runner: got %s", explain(res))
	}
}

// writeProbe is a file in the image the probe tries to create.
func writeProbe() string {
	if isDir("/data") {
		return "/data/evil"
	}
	return "/usr/evil"
}

// TestIsolationOnBuiltRuntime runs the isolation tests again with every
// node in the pandas runtime built by weir runtime build: no network, no
// host files, the limits, the user namespace hold there too.
func TestIsolationOnBuiltRuntime(t *testing.T) {
	if os.Getenv("WEIR_TEST_RUNTIME_PANDAS") == "" {
		t.Skip("WEIR_TEST_RUNTIME_PANDAS is not set (test.sh builds the pandas runtime and sets it)")
	}
	sandboxes(t)
	testRuntime = "pandas"
	defer func() { testRuntime = "" }()
	// The tests below run in the image: pandas is there, not on the host.
	if res := run(t, exec.Spec{ID: "in-image", Args: py("import pandas")}); res.Reason != exec.ReasonOK {
		t.Fatalf("run() does not run in the pandas runtime: %s", explain(res))
	}
	for _, tc := range []struct {
		name string
		f    func(*testing.T)
	}{
		{"NetworkExternalUnreachable", TestNetworkExternalUnreachable},
		{"NetworkHostLoopbackUnreachable", TestNetworkHostLoopbackUnreachable},
		{"NetworkNoDNSOnlyLoopback", TestNetworkNoDNSOnlyLoopback},
		{"FilesServerDataInvisible", TestFilesServerDataInvisible},
		{"EnvIsExactlySpecEnv", TestEnvIsExactlySpecEnv},
		{"WritesDenied", TestWritesDenied},
		{"OnlyStdioOpenAndCwd", TestOnlyStdioOpenAndCwd},
		{"PrivilegeDenied", TestPrivilegeDenied},
		{"ForkBombStopped", TestForkBombStopped},
		{"MemoryBombKilled", TestMemoryBombKilled},
		{"BusyLoopKilledAtWallLimit", TestBusyLoopKilledAtWallLimit},
		{"BackgroundChildKilled", TestBackgroundChildKilled},
		{"OutputQuota", TestOutputQuota},
		{"UserNamespace", TestUserNamespace},
		{"RunnerExecutes", TestRunnerExecutes},
		{"Report", TestReport},
	} {
		t.Run(tc.name, tc.f)
	}
}
