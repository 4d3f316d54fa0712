// Package host reads what the benchmarks print about the machine they ran
// on: load, CPU time used, and the share of CPU time the hypervisor stole,
// so that figures from a busy or oversubscribed machine can be told apart.
package host

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LoadAvg is the 1, 5 and 15 minute load averages ("?" if unreadable).
func LoadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// CPUUsed is the CPU time of this process and of its children that have
// been waited for (all), and of this process alone (self).
func CPUUsed() (all, self time.Duration) {
	var s, k syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &s)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &k)
	self = time.Duration(s.Utime.Nano() + s.Stime.Nano())
	return self + time.Duration(k.Utime.Nano()+k.Stime.Nano()), self
}

// CPUTimes reads the machine's CPU counters (/proc/stat): total and
// stolen (the hypervisor ran someone else on our CPUs), in clock ticks.
func CPUTimes() (total, steal uint64) {
	b, _ := os.ReadFile("/proc/stat")
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseUint(v, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal
			total += n
		}
		if i == 7 {
			steal = n
		}
	}
	return total, steal
}

// StealSince says what share of the CPUs' time was stolen since the
// counters t0, s0 of CPUTimes: figures measured under steal are that much
// slower.
func StealSince(t0, s0 uint64) string {
	t1, s1 := CPUTimes()
	if t1 <= t0 {
		return "?"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(s1-s0)/float64(t1-t0))
}
