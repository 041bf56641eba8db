package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// TestMain runs the demo itself when the test binary is started as a
// child by TestDemoKilled, with the demo's arguments in OMEGA_DEMO_ARGS.
func TestMain(m *testing.M) {
	if args := os.Getenv("OMEGA_DEMO_ARGS"); args != "" {
		if err := run(strings.Fields(args)); err != nil {
			fmt.Fprintln(os.Stderr, "kernel:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestDemo runs the demo twice on one directory: the second run recovers
// the first one's kernel and goes on, and both verify their chain.
func TestDemo(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	for range 2 {
		if err := run([]string{"--quiet", "--events", "20", "--dir", dir}); err != nil {
			t.Fatal(err)
		}
	}
}

// demo runs the demo in a child process with args and returns what it
// printed and how it ended.
func demo(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "OMEGA_DEMO_ARGS="+strings.Join(args, " "))
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestDemoKilled runs the demo's documented kill and restart: a first run
// kills itself with SIGKILL after some acknowledged Submits, and a second
// run on the same directory recovers, goes on, and verifies the chain.
func TestDemoKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo in child processes; skipped in -short runs")
	}
	dir := filepath.Join(t.TempDir(), "data")
	out, err := demo(t, "--quiet", "--events", "40", "--dir", dir, "--kill-after", "30")
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the first run ended with %v, want killed:\n%s", err, out)
	}
	if ws, ok := exit.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("the first run ended with %v, want SIGKILL:\n%s", err, out)
	}
	if !strings.Contains(out, "killing the process after 30 acknowledged Submits") || strings.Contains(out, "reopened:") {
		t.Fatalf("the first run did not kill itself after 30 Submits:\n%s", out)
	}
	out, err = demo(t, "--quiet", "--events", "40", "--dir", dir)
	if err != nil {
		t.Fatalf("the run after the kill: %v\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^recovered: chain at batch \d+, \d+ batches certified again, safe mode false$`).MatchString(out) {
		t.Errorf("the run after the kill did not recover cleanly:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^reopened: the chain of [1-9]\d* certificates verifies`).MatchString(out) {
		t.Errorf("the run after the kill did not verify its chain:\n%s", out)
	}
}
