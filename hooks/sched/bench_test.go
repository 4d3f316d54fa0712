package sched

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
)

// BenchmarkAdmitDone is the scheduler's cost per run when nothing waits:
// Admit (admitted at once) then Done, one branch, per policy.
func BenchmarkAdmitDone(b *testing.B) {
	for _, policy := range PolicyNames() {
		b.Run(policy, func(b *testing.B) {
			s, _ := New(Config{MaxRuns: 4, Policy: policy})
			ctx := context.Background()
			r := Request{ID: "r", Repo: "x", Pusher: "a", Targets: []Target{{Branch: "main"}}}
			b.ReportAllocs()
			for b.Loop() {
				tk, err := s.Admit(ctx, r)
				if err != nil {
					b.Fatal(err)
				}
				tk.Done(Succeeded, "")
			}
		})
	}
}

// BenchmarkAdmitDoneQueued is the cost per run under contention, against
// a peer measured in the same run: a buffered channel of 2 as the
// semaphore (no branches, no order, no positions, no listing).
//
// waiters×GOMAXPROCS goroutines of 16 identities admit and end runs
// through 2 run slots, so most wait in the queue, are told their
// position as it changes and are woken by the policy; each run takes
// one node slot. Per policy and number of waiters.
func BenchmarkAdmitDoneQueued(b *testing.B) {
	for _, par := range []int{8, 64} {
		b.Run(fmt.Sprintf("peer=chan/waiters=%d", par), func(b *testing.B) {
			sem := make(chan struct{}, 2)
			b.SetParallelism(par)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					sem <- struct{}{}
					<-sem
				}
			})
		})
	}
	for _, policy := range PolicyNames() {
		for _, par := range []int{8, 64} {
			b.Run(fmt.Sprintf("%s/waiters=%d", policy, par), func(b *testing.B) {
				s, _ := New(Config{MaxRuns: 2, MaxQueue: 1 << 20, CPU: 2, Policy: policy})
				var n atomic.Int64
				b.SetParallelism(par)
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					i := n.Add(1)
					r := Request{
						ID: RunID(fmt.Sprint("r", i)), Repo: "x", Pusher: Identity(fmt.Sprint("agent", i%16)),
						Targets:  []Target{{Branch: fmt.Sprint("b", i)}},
						Progress: func(Position) {},
					}
					ctx := context.Background()
					for pb.Next() {
						tk, err := s.Admit(ctx, r)
						if err != nil {
							b.Error(err)
							return
						}
						rel, err := tk.Node(ctx, Demand{})
						if err != nil {
							b.Error(err)
							return
						}
						rel()
						tk.Done(Succeeded, "")
					}
				})
			})
		}
	}
}
