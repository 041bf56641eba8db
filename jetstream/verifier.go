package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/omega-sheaf/omega"
)

// Verify reads OMEGA_CERTS from its first message and checks the chain as
// it reads: each envelope must be the certificate of the batch its subject
// names, signed by a key of ring under binding want, and continue the
// chain verified so far (omega.VerifyChain, one link at a time). A
// certificate that arrives before the one it follows (published again
// after a failure left a batch out) waits for it, up to maxAhead of them.
// It calls each, when not nil, with every verified certificate, in chain
// order, and returns the first error: a message that is no certificate of
// the chain, or each's error. It returns ctx's error when ctx ends, with
// the chain verified so far sound.
func Verify(ctx context.Context, js jetstream.JetStream, ring omega.KeyRing, want omega.Binding, each func(*omega.Certificate) error) error {
	cons, err := js.OrderedConsumer(ctx, CertsStream, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer it.Stop()
	wg.Go(func() {
		<-ctx.Done()
		it.Stop()
	})
	var anchor omega.ChainAnchor
	chain := make([]*omega.Certificate, 1)
	ahead := make(map[uint64]*omega.Certificate) // by batch id, past the next
	for {
		m, err := it.Next()
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) && ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("omega/jetstream: reading %s: %w", CertsStream, err)
		}
		id, err := batchOfSubject(m.Subject())
		if err != nil {
			return err
		}
		c, err := omega.DecodeCertificate(m.Data())
		if err != nil {
			return fmt.Errorf("omega/jetstream: %s: %w", m.Subject(), err)
		}
		if c.BatchID != id {
			return fmt.Errorf("omega/jetstream: %s holds the certificate of batch %d", m.Subject(), c.BatchID)
		}
		if id > anchor.BatchID+1 {
			if len(ahead) >= maxAhead {
				return fmt.Errorf("omega/jetstream: %s: %d certificates wait for batch %d", CertsStream, len(ahead), anchor.BatchID+1)
			}
			ahead[id] = c
			continue
		}
		for c != nil {
			chain[0] = c
			if anchor, err = omega.VerifyChain(ctx, chain, ring, want, &omega.ChainOptions{Anchor: anchor, Workers: 1}); err != nil {
				return fmt.Errorf("omega/jetstream: %s: %w", CertSubject(c.BatchID), err)
			}
			if each != nil {
				if err := each(c); err != nil {
					return err
				}
			}
			c = ahead[anchor.BatchID+1]
			delete(ahead, anchor.BatchID+1)
		}
	}
}

// maxAhead bounds the certificates Verify holds while it waits for one
// that they follow.
const maxAhead = 1 << 16
