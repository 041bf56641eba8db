// Package natstest runs a NATS server with JetStream inside the process,
// storing on a directory of the caller's: for tests, benchmarks and
// demos of package jetstream, with nothing to install.
package natstest

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Options configures [Start]. A nil *Options and zero fields mean the
// defaults.
type Options struct {
	// Port is the client port; 0 means one the system picks.
	Port int
	// SyncLazily leaves the server's default: the store is fsynced every
	// two minutes, so acknowledged messages can be lost with the machine.
	// By default the server is started with SyncAlways (sync_interval:
	// always): every stored message is fsynced before it is acknowledged.
	SyncLazily bool
}

// Start starts a server storing its streams in dir and returns it once it
// takes connections. Call Shutdown and WaitForShutdown to stop it; starting
// another on the same dir recovers what it stored.
func Start(dir string, opts *Options) (*server.Server, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	port := o.Port
	if port == 0 {
		port = server.RANDOM_PORT
	}
	s, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: !o.SyncLazily,
		NoLog:      true,
		NoSigs:     true,
	})
	if err != nil {
		return nil, fmt.Errorf("natstest: %w", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		return nil, errors.New("natstest: the server did not take connections within 10 s")
	}
	return s, nil
}
