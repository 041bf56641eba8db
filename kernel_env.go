package omega

import (
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"time"
)

// KernelConfigFromEnv maps the original system's environment variables
// onto a KernelConfig, for programs that want them; the library itself
// reads none. getenv looks a variable up (os.Getenv); unset or empty
// variables leave their field zero, the default:
//
//	OMEGA_BATCH_SIZE     BatchSize, a positive integer
//	OMEGA_FLUSH_MS       FlushInterval, in milliseconds, positive (at most 9223372036854)
//	OMEGA_METRICS_DIR    MetricsFile: metrics.jsonl in that directory
//	OMEGA_CERT_DIR       CertDir
//	OMEGA_SNAPSHOT_DIR   SnapshotDir
//	OMEGA_REPLAY_DIR     IncidentDir: where replay incidents are written
//
// A value that does not parse is refused with an error naming the variable.
func KernelConfigFromEnv(getenv func(string) string) (KernelConfig, error) {
	var c KernelConfig
	positive := func(name string) (int, error) {
		v := getenv(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("omega: %s=%q is not a positive integer", name, v)
		}
		return n, nil
	}
	var err error
	if c.BatchSize, err = positive("OMEGA_BATCH_SIZE"); err != nil {
		return KernelConfig{}, err
	}
	if c.BatchSize > MaxBatchContents {
		return KernelConfig{}, fmt.Errorf("omega: OMEGA_BATCH_SIZE=%d is over %d", c.BatchSize, MaxBatchContents)
	}
	ms, err := positive("OMEGA_FLUSH_MS")
	if err != nil {
		return KernelConfig{}, err
	}
	if maxMS := int64(math.MaxInt64 / time.Millisecond); int64(ms) > maxMS {
		return KernelConfig{}, fmt.Errorf("omega: OMEGA_FLUSH_MS=%d is over %d, the most a duration holds", ms, maxMS)
	}
	c.FlushInterval = time.Duration(ms) * time.Millisecond
	if d := getenv("OMEGA_METRICS_DIR"); d != "" {
		c.MetricsFile = filepath.Join(d, "metrics.jsonl")
	}
	c.CertDir = getenv("OMEGA_CERT_DIR")
	c.SnapshotDir = getenv("OMEGA_SNAPSHOT_DIR")
	c.IncidentDir = getenv("OMEGA_REPLAY_DIR")
	return c, nil
}
