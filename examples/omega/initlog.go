package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"

	"github.com/omega-sheaf/omega/framelog"
)

type initLogOpts struct {
	output string
}

func (o *initLogOpts) declare(flags *flag.FlagSet) {
	flags.StringVar(&o.output, "output", "", "the event log to create: its 64-byte header alone (required; an existing file is refused)")
}

func initLogFlags(flags *flag.FlagSet) { new(initLogOpts).declare(flags) }

// runInitLog creates an empty event log, what the original system's
// make_sample_log.sh wrote for its manual sequence to ingest: the header
// alone, bound to this checker's schema, synced with its directory.
func runInitLog(args []string) ([]byte, error) {
	var o initLogOpts
	flags := newFlagSet("init-log")
	o.declare(flags)
	if err := parseFlags(flags, args, "output"); err != nil {
		return nil, err
	}
	if _, err := os.Lstat(o.output); err == nil {
		return nil, fmt.Errorf("init-log: %s exists: an event log is never replaced", o.output)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	w, err := framelog.Open(o.output, logHeader(), nil)
	if err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	hdr := logHeader()
	return marshal(struct {
		Status        string `json:"status"`
		Command       string `json:"command"`
		Output        string `json:"output"`
		Bytes         int    `json:"bytes"`
		SchemaVersion uint16 `json:"schema_version"`
		SchemaHash    string `json:"schema_hash"`
	}{"ok", "init-log", o.output, framelog.HeaderSize, hdr.SchemaVersion, fmt.Sprintf("%x", hdr.SchemaHash)}), nil
}
