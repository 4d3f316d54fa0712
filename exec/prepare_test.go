package exec_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/exec"
)

// TestPrepared: a sandbox prepared ahead sees the files added to an input
// dir after it was built, its wall clock starts at Run, and it leaves
// nothing behind whether it is run, closed unused, or given up by its ctx.
func TestPrepared(t *testing.T) {
	s := sandboxes(t)
	ctx := context.Background()

	t.Run("run", func(t *testing.T) {
		in := t.TempDir()
		os.Chmod(in, 0o755)
		out := t.TempDir()
		p, err := s.Prepare(ctx, exec.Spec{
			ID: "prepared-run", Args: []string{"/bin/sh", "-c", "cat /in/t/late.txt; echo made > /out/o.txt"},
			Env: []string{"PATH=/usr/bin:/bin"}, Inputs: map[string]string{"t": in}, Output: out,
			Limits: exec.Limits{Wall: time.Second},
		})
		if err != nil {
			t.Fatal(err)
		}
		<-p.Ready()
		// Longer than the wall limit: the limit starts at Run, not at Prepare.
		time.Sleep(1200 * time.Millisecond)
		mustWrite(t, filepath.Join(in, "late.txt"), "written after prepare\n")
		res, err := p.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if res.Reason != exec.ReasonOK || !strings.Contains(string(res.Output), "written after prepare") {
			t.Fatalf("%s", explain(res))
		}
		if b, _ := os.ReadFile(filepath.Join(out, "o.txt")); string(b) != "made\n" {
			t.Fatalf("output %q", b)
		}
		if _, err := p.Run(ctx); err == nil {
			t.Fatal("a prepared sandbox ran twice")
		}
		p.Close() // after Run: nothing to do
		assertNoLeftovers(t, "weir-prepared-run")
	})

	t.Run("close unused", func(t *testing.T) {
		p, err := s.Prepare(ctx, exec.Spec{ID: "prepared-close", Args: []string{"/bin/true"}, Env: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		<-p.Ready()
		p.Close()
		assertNoLeftovers(t, "weir-prepared-close")
		// The ID is free again.
		res, err := s.Run(ctx, exec.Spec{ID: "prepared-close", Args: []string{"/bin/true"}, Env: []string{}})
		if err != nil || res.Reason != exec.ReasonOK {
			t.Fatalf("%v %+v", err, res)
		}
	})

	t.Run("ctx ends before run", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		p, err := s.Prepare(cctx, exec.Spec{ID: "prepared-cancel", Args: []string{"/bin/true"}, Env: []string{}})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		deadline := time.Now().Add(10 * time.Second)
		for {
			if _, err := s.Run(ctx, exec.Spec{ID: "prepared-cancel", Args: []string{"/bin/true"}, Env: []string{}}); err == nil {
				break // torn down: the ID was released
			}
			if time.Now().After(deadline) {
				t.Fatal("a prepared sandbox whose ctx ended was not torn down")
			}
			time.Sleep(20 * time.Millisecond)
		}
		res, err := p.Run(ctx)
		if err != nil || res.Reason != exec.ReasonAborted {
			t.Fatalf("Run after ctx ended: %v %+v", err, res)
		}
		assertNoLeftovers(t, "weir-prepared-cancel")
	})
}

// TestPreparedGate: a gated node starts at Prepare and reads "go" on its
// stdin at Run; its wall clock starts at Run; closed unused, it is killed.
func TestPreparedGate(t *testing.T) {
	s := sandboxes(t)
	ctx := context.Background()
	in := t.TempDir()
	os.Chmod(in, 0o755)
	// Starts, says so in /tmp, waits for the gate, then reads its input.
	script := `echo started; read line; echo "gate=$line"; cat /in/t/late.txt`
	p, err := s.Prepare(ctx, exec.Spec{
		ID: "gated", Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"},
		Inputs: map[string]string{"t": in}, Gate: true, Limits: exec.Limits{Wall: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Ready()
	time.Sleep(1200 * time.Millisecond) // past the wall limit: it counts from Run
	mustWrite(t, filepath.Join(in, "late.txt"), "late input\n")
	res, err := p.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Reason != exec.ReasonOK || !strings.Contains(string(res.Output), "started\ngate=go\nlate input\n") {
		t.Fatalf("%s", explain(res))
	}
	assertNoLeftovers(t, "weir-gated")

	p, err = s.Prepare(ctx, exec.Spec{ID: "gated-closed", Args: []string{"/bin/sh", "-c", script}, Env: []string{"PATH=/usr/bin:/bin"}, Gate: true})
	if err != nil {
		t.Fatal(err)
	}
	<-p.Ready()
	p.Close()
	assertNoLeftovers(t, "weir-gated-closed")
}

// TestAsyncTeardown: Run returns the final result and /out before the
// sandbox is torn down; the teardown then finishes on its own, leaving
// nothing, and the ID is free again afterwards.
func TestAsyncTeardown(t *testing.T) {
	s := sandboxes(t)
	ctx := context.Background()
	out := t.TempDir()
	spec := exec.Spec{ID: "async-teardown", Args: []string{"/bin/sh", "-c", "echo made > /out/o.txt; echo said"},
		Env: []string{"PATH=/usr/bin:/bin"}, Output: out, AsyncTeardown: true}
	res, err := s.Run(ctx, spec)
	if err != nil || res.Reason != exec.ReasonOK || !strings.Contains(string(res.Output), "said") {
		t.Fatalf("%v %+v", err, res)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "o.txt")); string(b) != "made\n" {
		t.Fatalf("/out not collected when Run returned: %q", b)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Run(ctx, exec.Spec{ID: "async-teardown", Args: []string{"/bin/true"}, Env: []string{}}); err == nil {
			break // the first one's teardown released the ID
		}
		if time.Now().After(deadline) {
			t.Fatal("an async teardown never finished")
		}
		time.Sleep(10 * time.Millisecond)
	}
	assertNoLeftovers(t, "weir-async-teardown")
}
