//go:build unix

package blocks

import (
	"syscall"
	"time"
)

// processCPU is the user plus system CPU time the process has used so far. Benchmarks
// report it beside wall time: on a shared machine it is the steadier figure.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
