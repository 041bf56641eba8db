package omegatest_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/omegatest"
	"github.com/omega-sheaf/omega/trace"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// TestKernelActions runs drawn kernel actions on a real kernel and holds
// its trace to the model and its history to the spec's invariants.
func TestKernelActions(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		actions := omegatest.KernelActions().Draw(rt, "actions")
		var mu sync.Mutex
		var rec trace.Recorder
		var h omegatest.KernelHistory
		const age = 5 * time.Millisecond
		cfg := &omega.KernelConfig{
			Signer:        testKey,
			BatchSize:     4,
			FlushInterval: time.Hour,
			MaxPendingAge: age,
			SnapshotEvery: -1,
			Trace:         func(s trace.Step) { mu.Lock(); rec.Record(s); mu.Unlock() },
			OnDecision:    func(d omega.Decision) { mu.Lock(); h.Decisions = append(h.Decisions, d); mu.Unlock() },
		}
		ctx := context.Background()
		k, err := omega.OpenKernel(ctx, t.TempDir(), cfg)
		if err != nil {
			rt.Fatal(err)
		}
		for _, a := range actions {
			acked, err := a.Apply(ctx, k, age)
			if err != nil {
				k.Close(ctx)
				rt.Fatalf("%s: %v", a.Name, err)
			}
			h.Acknowledged = append(h.Acknowledged, acked...)
		}
		for range 4 { // released by expiry, decided, and what waited for them too
			omegatest.KernelAction{Name: "Expire"}.Apply(ctx, k, age)
		}
		if err := k.Close(ctx); err != nil {
			rt.Fatal(err)
		}
		if err := omegatest.CheckTrace(rec.Steps, 4); err != nil {
			rt.Fatalf("CheckTrace: %v", err)
		}
		if err := omegatest.CheckHistory(h); err != nil {
			rt.Fatalf("CheckHistory: %v", err)
		}
	})
}

func ev(id uint64, node uint32, lamport uint64, deps ...uint64) omega.Event {
	e := omega.Event{ID: omega.ID64(id), NodeID: node, Lamport: lamport, Payload: []byte{byte(id)}, Deps: []omega.EventID{}}
	for _, d := range deps {
		e.Deps = append(e.Deps, omega.ID64(d))
	}
	e.PayloadHash = omega.PayloadHash(e.Payload)
	return e
}

// merged is a decision accepting es, as a kernel would report it.
func merged(es ...omega.Event) omega.Decision {
	r := &omega.Result{Kind: omega.KindMerge}
	for _, e := range es {
		r.Members = append(r.Members, omega.Member{ID: e.ID, Digest: e.Digest()})
	}
	return omega.Decision{Output: omega.Output{Result: r}}
}

// TestHistoryChecksCatch gives each history check a history that breaks
// its rule, and a sound one.
func TestHistoryChecksCatch(t *testing.T) {
	a, b := ev(1, 1, 5), ev(2, 1, 3)
	dep := ev(3, 2, 2, 1) // depends on a, at a lower lamport
	for _, tc := range []struct {
		rule  string
		check func(omegatest.KernelHistory) error
		h     omegatest.KernelHistory
	}{
		{"NoDoubleAccept", omegatest.NoDoubleAccept, omegatest.KernelHistory{Acknowledged: []omega.Event{a}, Decisions: []omega.Decision{merged(a), merged(a)}}},
		{"DepsAcceptedNoLater", omegatest.DepsAcceptedNoLater, omegatest.KernelHistory{Acknowledged: []omega.Event{a, dep}, Decisions: []omega.Decision{merged(dep), merged(a)}}},
		{"LamportMonotonic", omegatest.LamportMonotonic, omegatest.KernelHistory{Acknowledged: []omega.Event{a, b}, Decisions: []omega.Decision{merged(a), merged(b)}}},
		{"ClockCondition", omegatest.ClockCondition, omegatest.KernelHistory{Acknowledged: []omega.Event{a, dep}, Decisions: []omega.Decision{merged(a), merged(dep)}}},
		{"EventuallyDecided", omegatest.EventuallyDecided, omegatest.KernelHistory{Acknowledged: []omega.Event{a, b}, Decisions: []omega.Decision{merged(a)}}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			err := tc.check(tc.h)
			var br *omegatest.Breach
			if !errors.As(err, &br) || br.Rule != tc.rule || len(br.Events) == 0 {
				t.Fatalf("%s = %v, want a breach of %s naming events", tc.rule, err, tc.rule)
			}
			if !strings.Contains(err.Error(), "event ") {
				t.Errorf("the breach does not show its events: %v", err)
			}
		})
	}
	sound := omegatest.KernelHistory{Acknowledged: []omega.Event{b, a, ev(4, 2, 6, 1)}, Decisions: []omega.Decision{merged(b), merged(a, ev(4, 2, 6, 1))}}
	for _, check := range []func(omegatest.KernelHistory) error{omegatest.NoDoubleAccept, omegatest.DepsAcceptedNoLater, omegatest.LamportMonotonic, omegatest.ClockCondition, omegatest.EventuallyDecided} {
		if err := check(sound); err != nil {
			t.Errorf("a sound history: %v", err)
		}
	}
	if err := omegatest.ChainLinked(sound); err == nil {
		t.Errorf("ChainLinked(decisions without certificates) = nil")
	}
}

func TestChainLinkedCatches(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		chain := omegatest.CertChain(testKey).Draw(rt, "chain")
		var h omegatest.KernelHistory
		for _, c := range chain {
			h.Decisions = append(h.Decisions, omega.Decision{Certificate: c})
		}
		if err := omegatest.ChainLinked(h); err != nil {
			rt.Fatalf("ChainLinked(a generated chain) = %v", err)
		}
		if len(chain) < 3 {
			return
		}
		i := rapid.IntRange(1, len(chain)-2).Draw(rt, "dropped")
		h.Decisions = append(h.Decisions[:i:i], h.Decisions[i+1:]...)
		var br *omegatest.Breach
		if err := omegatest.ChainLinked(h); !errors.As(err, &br) || br.Decision != i {
			rt.Fatalf("ChainLinked(a chain without certificate %d) = %v", i, err)
		}
	})
}

// TestCertChainVerifies checks that generated chains verify.
func TestCertChainVerifies(t *testing.T) {
	ring, _ := omega.NewKeyRing(testKey.Public().(ed25519.PublicKey))
	c, _ := omega.NewChecker(nil)
	rapid.Check(t, func(rt *rapid.T) {
		chain := omegatest.CertChain(testKey).Draw(rt, "chain")
		if _, err := omega.VerifyChain(context.Background(), chain, ring, c.Binding(), nil); err != nil {
			rt.Fatalf("VerifyChain: %v", err)
		}
	})
}

// TestFrameLogReplays checks that generated logs replay deterministically.
func TestFrameLogReplays(t *testing.T) {
	c, _ := omega.NewChecker(nil)
	rapid.Check(t, func(rt *rapid.T) {
		log := omegatest.FrameLog(9).Draw(rt, "log")
		rp := omega.NewReplayer(nil, []io.Reader{bytes.NewReader(log)}, 9, c, nil)
		var last omega.Hash
		n := 0
		for {
			b, err := rp.Next(context.Background())
			if err == io.EOF {
				break
			}
			if err != nil {
				rt.Fatalf("replaying a generated log: %v", err)
			}
			last, n = b.MergedStateHash, n+1
		}
		rep, err := rp.Finish(context.Background(), last)
		if err != nil || rep.Incident != nil || n == 0 {
			rt.Fatalf("Finish after %d batches = %+v, %v", n, rep, err)
		}
	})
}

// TestCheckTraceCatches checks that CheckTrace names a broken step.
func TestCheckTraceCatches(t *testing.T) {
	e := trace.Event{ID: trace.ID{Lo: 1}, Node: 1, Lamport: 1, PayloadOK: true, Digest: trace.Digest{1}}
	steps := []trace.Step{
		{Action: trace.Restart, NextBatch: 1, Safe: true},
		{Action: trace.Receive, Events: []trace.Event{e}},
		{Action: trace.Decide, Outcome: trace.Merge, BatchID: 1, Events: []trace.Event{e}},
	}
	if err := omegatest.CheckTrace(steps, 4); err == nil || !strings.Contains(err.Error(), "step 2") || !strings.Contains(err.Error(), "safe mode") {
		t.Errorf("CheckTrace(a merge in safe mode) = %v", err)
	}
	if err := omegatest.CheckTrace(steps[:2], 4); err != nil {
		t.Errorf("CheckTrace(a sound prefix) = %v", err)
	}
}
