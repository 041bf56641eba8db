package jetstream_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	js "github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/jetstream"
	"github.com/omega-sheaf/omega/jetstream/natstest"
)

// helper starts this test binary as the helper test name, with env, and
// returns it once it has printed "ready". It is killed at the end of the
// test if still running.
func helper(t *testing.T, name string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+name+"$", "-test.v")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		var lines []string
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- ""
				for sc.Scan() {
				}
				return
			}
			lines = append(lines, sc.Text())
		}
		ready <- strings.Join(lines, "\n")
	}()
	select {
	case msg := <-ready:
		if msg != "" {
			t.Fatalf("%s ended before it was ready:\n%s", name, msg)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s was not ready in 30 s", name)
	}
	return cmd
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
}

// TestServerKillHelperProcess runs a server on the directory and port the
// environment names until it is killed.
func TestServerKillHelperProcess(t *testing.T) {
	dir := os.Getenv("OMEGA_TEST_NATS_DIR")
	if dir == "" {
		t.Skip("run by TestServerKilled")
	}
	port, _ := strconv.Atoi(os.Getenv("OMEGA_TEST_NATS_PORT"))
	if _, err := natstest.Start(dir, &natstest.Options{Port: port}); err != nil {
		fmt.Println("helper:", err)
		return
	}
	fmt.Println("ready")
	select {}
}

// TestServerKilled kills the process of a server (SyncAlways) while
// nodes publish, and starts it again, several times: every event whose
// Publish returned is in the stream, and a reconciler decides each event
// once.
func TestServerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	dir := t.TempDir()
	port := freePort(t)
	env := []string{"OMEGA_TEST_NATS_DIR=" + dir, "OMEGA_TEST_NATS_PORT=" + strconv.Itoa(port)}
	url := fmt.Sprintf("nats://127.0.0.1:%d", port)
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[omega.Hash]bool{}
	for round := range 5 {
		srv := helper(t, "TestServerKillHelperProcess", env...)
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		j, err := js.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			setup(t, j, nil)
		}
		ctx, cancel := context.WithCancel(context.Background())
		var mu sync.Mutex
		var wg sync.WaitGroup
		for node := uint32(1); node <= 3; node++ {
			wg.Go(func() {
				evs := nodeEvents(uint32(round)*10+node, 2000)
				for i := 0; i < len(evs); i += 4 {
					chunk := evs[i : i+4]
					if err := jetstream.Publish(ctx, j, omega.Limits{}, chunk...); err != nil {
						return // the server is gone
					}
					mu.Lock()
					for _, e := range chunk {
						acked[e.Digest()] = true
					}
					mu.Unlock()
				}
			})
		}
		time.Sleep(time.Duration(50+rng.IntN(150)) * time.Millisecond)
		kill(t, srv)
		cancel()
		wg.Wait()
		nc.Close()
	}
	srv := helper(t, "TestServerKillHelperProcess", env...)
	defer kill(t, srv)
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := js.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	stored := storedEvents(t, j)
	lost := 0
	for d := range acked {
		if !stored[d] {
			lost++
		}
	}
	if lost > 0 || len(acked) == 0 {
		t.Fatalf("%d of %d acknowledged events are not in the stream after the kills", lost, len(acked))
	}
	t.Logf("%d events acknowledged, %d stored, over 5 kills", len(acked), len(stored))
	a := startReconciler(t, j, t.TempDir(), &jetstream.Config{Publish: jetstream.PublishNone})
	waitRead(t, a.r, streamLen(t, j))
	if err := a.stop(); err != nil {
		t.Fatal(err)
	}
	if st := a.r.Stats(); st.Taken != uint64(len(stored)) {
		t.Errorf("the reconciler took in %d events, the stream holds %d distinct ones", st.Taken, len(stored))
	}
}

// storedEvents returns the digests of the events the events stream holds.
func storedEvents(t *testing.T, j js.JetStream) map[omega.Hash]bool {
	t.Helper()
	n := streamLen(t, j)
	out := map[omega.Hash]bool{}
	if n == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cons, err := j.OrderedConsumer(ctx, jetstream.EventsStream, js.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	it, err := cons.Messages()
	if err != nil {
		t.Fatal(err)
	}
	defer it.Stop()
	for {
		m, err := it.Next()
		if err != nil {
			t.Fatal(err)
		}
		es, err := jetstream.DecodeMessage(m.Data(), omega.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			out[e.Digest()] = true
		}
		md, err := m.Metadata()
		if err != nil {
			t.Fatal(err)
		}
		if md.Sequence.Stream == n {
			return out
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	s, err := natstest.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	port := portOf(t, s.ClientURL())
	s.Shutdown()
	s.WaitForShutdown()
	return port
}

// TestReconcilerKillHelperProcess runs a reconciler on the directory and
// server the environment names until it is killed.
func TestReconcilerKillHelperProcess(t *testing.T) {
	dir := os.Getenv("OMEGA_TEST_RECONCILER_DIR")
	if dir == "" {
		t.Skip("run by TestReconcilerKilled")
	}
	nc, err := nats.Connect(os.Getenv("OMEGA_TEST_NATS_URL"))
	if err != nil {
		fmt.Println("helper:", err)
		return
	}
	j, err := js.New(nc)
	if err != nil {
		fmt.Println("helper:", err)
		return
	}
	r, err := jetstream.Open(dir, j, &jetstream.Config{Signer: testKey, BatchSize: 8, CheckpointEvery: 3})
	if err != nil {
		fmt.Println("helper:", err)
		return
	}
	fmt.Println("ready")
	err = r.Run(context.Background())
	fmt.Println("helper: Run:", err)
}

// TestReconcilerKilled kills the process of a reconciler at arbitrary
// moments while nodes publish, and starts it again on its directory: its
// chain, and what it published, is that of a reconciler never stopped.
func TestReconcilerKilled(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills processes; skipped in -short runs")
	}
	s := startServer(t, "", nil)
	j := connect(t, s)
	setup(t, j, nil)
	dir := t.TempDir()
	env := []string{"OMEGA_TEST_RECONCILER_DIR=" + dir, "OMEGA_TEST_NATS_URL=" + s.ClientURL()}
	rng := rand.New(rand.NewPCG(3, 4))
	var lens []int
	for round := range 6 {
		// Checkpoints are written every 3 batches: a kill may also land
		// while one is written.
		r := helper(t, "TestReconcilerKillHelperProcess", env...)
		done := make(chan struct{})
		go func() {
			defer close(done)
			publishNodes(t, j, 3+round, 100)
		}()
		time.Sleep(time.Duration(20+rng.IntN(100)) * time.Millisecond)
		kill(t, r)
		<-done
		if _, err := os.Stat(dir + "/certs/cert.log"); err == nil {
			lens = append(lens, len(chain(t, dir))) // it verifies after every kill
		}
	}
	t.Logf("certificates after each kill: %v", lens)
	if len(lens) < 3 || lens[len(lens)-1] == 0 {
		t.Fatalf("certificates after each kill: %v: the reconciler was killed before it certified", lens)
	}
	a := startReconciler(t, j, dir, &jetstream.Config{BatchSize: 8, CheckpointEvery: 3})
	ref := t.TempDir()
	b := startReconciler(t, j, ref, &jetstream.Config{BatchSize: 8, Publish: jetstream.PublishNone})
	n := streamLen(t, j)
	waitRead(t, a.r, n)
	waitRead(t, b.r, n)
	for _, r := range []running{a, b} {
		if err := r.stop(); err != nil {
			t.Fatal(err)
		}
	}
	if a.r.ResumedAt() == 0 {
		t.Error("the last start read the stream from its beginning, not from a checkpoint")
	}
	want := chain(t, ref)
	sameChains(t, "killed six times against never stopped", chain(t, dir), want)
	sameChains(t, "OMEGA_CERTS", published(t, j, len(want)), want)
}
