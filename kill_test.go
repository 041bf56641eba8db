package omega

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runUntilKilled runs the test helper of this binary with the environment
// variable env set, reads the "acked ID HASH" lines it prints once each
// piece of work is durable, and kills it (SIGKILL: no deferred call runs)
// delay after its first acknowledgement. It returns the acknowledgements,
// the last id acknowledged, and the first lines it printed.
func runUntilKilled(t *testing.T, helper, env string, delay time.Duration) (acked map[uint64]string, last uint64, head string) {
	t.Helper()
	return runUntilKilledEnv(t, helper, []string{env}, delay)
}

// runUntilKilledEnv is runUntilKilled with several environment variables.
func runUntilKilledEnv(t *testing.T, helper string, env []string, delay time.Duration) (acked map[uint64]string, last uint64, head string) {
	t.Helper()
	return runKilled(t, helper, env, delay, false)
}

// runKilledAfterStart is runUntilKilledEnv with delay counted from the
// start of the process, so that the kill may land before its first
// acknowledgement, while it opens and recovers.
func runKilledAfterStart(t *testing.T, helper string, env []string, delay time.Duration) (acked map[uint64]string, last uint64, head string) {
	t.Helper()
	return runKilled(t, helper, env, delay, true)
}

func runKilled(t *testing.T, helper string, env []string, delay time.Duration, fromStart bool) (acked map[uint64]string, last uint64, head string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+helper+"$")
	cmd.Env = append(os.Environ(), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if fromStart {
		time.AfterFunc(delay, func() { cmd.Process.Kill() })
	}
	acked = make(map[uint64]string)
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		if len(lines) < 5 {
			lines = append(lines, line)
		}
		f := strings.Fields(line)
		if len(f) != 3 || f[0] != "acked" {
			continue
		}
		k, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s printed %q", helper, line)
		}
		acked[k], last = f[2], k
		if len(acked) == 1 && !fromStart {
			time.AfterFunc(delay, func() { cmd.Process.Kill() })
		}
	}
	cmd.Wait()
	return acked, last, strings.Join(lines, "\n")
}
