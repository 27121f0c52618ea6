//go:build !unix

package serving

import "time"

// cpuTime is 0 where the process's CPU time is not read: per-CPU-second rates are then 0.
func cpuTime() time.Duration { return 0 }
