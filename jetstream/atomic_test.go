package jetstream

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega/jetstream/natstest"
)

// TestPublishAtomic: an atomic batch stores all its messages, and one
// that repeats a certificate subject stores none of them.
func TestPublishAtomic(t *testing.T) {
	s, err := natstest.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Shutdown(); s.WaitForShutdown() }()
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	j, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := SetupStreams(ctx, j, nil); err != nil {
		t.Fatal(err)
	}
	msgs := func(ids ...uint64) []*nats.Msg {
		var out []*nats.Msg
		for _, id := range ids {
			out = append(out, &nats.Msg{Subject: CertSubject(id), Data: []byte{byte(id)}})
		}
		return out
	}
	count := func() uint64 {
		st, err := j.Stream(ctx, CertsStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Msgs
	}
	if err := publishAtomic(ctx, nc, msgs(1, 2, 3)); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("after a batch of 3: %d messages", n)
	}
	if err := publishAtomic(ctx, nc, msgs(4, 2)); err == nil {
		t.Fatal("a batch repeating a certificate subject was taken")
	}
	if n := count(); n != 3 {
		t.Fatalf("after a refused batch: %d messages, want 3", n)
	}
}
