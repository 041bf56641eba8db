package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"github.com/omega-sheaf/omega"
)

type exportOpts struct {
	inputs segmentList
	output string
}

func (o *exportOpts) declare(fs *flag.FlagSet) {
	fs.Var(&o.inputs, "input", "a metrics file of JSON lines, as a kernel's MetricsFile or the original system's metrics writer left it (required; given again, the next file, in order)")
	fs.StringVar(&o.output, "output", "", "the file to write the lines to, renumbered (required)")
}

func exportFlags(fs *flag.FlagSet) { new(exportOpts).declare(fs) }

type exportOutput struct {
	Status     string         `json:"status"`
	Command    string         `json:"command"`
	Inputs     []string       `json:"inputs"`
	Output     string         `json:"output"`
	Lines      int            `json:"lines"`
	Renumbered int            `json:"renumbered"`
	Metrics    map[string]int `json:"metrics"`
}

// metricLine is one line of a metrics file: the kernel's shape,
// {"seq_id","metric","value","metadata"}, or the same without seq_id, with
// "name" for "metric" or "labels" for "metadata".
type metricLine struct {
	SeqID    *uint64           `json:"seq_id"`
	Metric   string            `json:"metric"`
	Name     string            `json:"name"`
	Value    json.RawMessage   `json:"value"`
	Metadata map[string]string `json:"metadata"`
	Labels   map[string]string `json:"labels"`
	// The original system's runtime wrote these beside the metric.
	BatchID *uint64      `json:"batch_id"`
	CertID  *json.Number `json:"cert_id"`
}

// runExportMetrics reads metric lines from the inputs, in order, and
// writes them to the output in the kernel's shape with seq_id numbered
// from 1 in that order: files from several runs, or lines written without
// sequence ids, become one sequence a reader can order and resume by.
func runExportMetrics(args []string) ([]byte, error) {
	var o exportOpts
	fs := newFlagSet("export-metrics")
	o.declare(fs)
	if err := parseFlags(fs, args, "output"); err != nil {
		return nil, err
	}
	if len(o.inputs) == 0 {
		return nil, usageErrorf("export-metrics: missing --input")
	}
	var buf bytes.Buffer
	sink := omega.NewJSONLSink(&buf)
	out := exportOutput{Status: "ok", Command: "export-metrics", Inputs: o.inputs, Output: o.output, Metrics: map[string]int{}}
	for _, path := range o.inputs {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(nil, 1<<20)
		for n := 1; sc.Scan(); n++ {
			if len(bytes.TrimSpace(sc.Bytes())) == 0 {
				continue
			}
			m, seq, err := parseMetricLine(sc.Bytes())
			if err != nil {
				f.Close()
				return nil, inputErrorf("export-metrics: %s line %d: %v", path, n, err)
			}
			out.Lines++
			if seq == nil || *seq != uint64(out.Lines) {
				out.Renumbered++
			}
			out.Metrics[m.Name]++
			sink.Record(m)
		}
		err = sc.Err()
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("export-metrics: %s: %w", path, err)
		}
	}
	if err := sink.Flush(); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(o.output, buf.Bytes()); err != nil {
		return nil, err
	}
	return marshal(out), nil
}

func parseMetricLine(b []byte) (omega.Metric, *uint64, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	var l metricLine
	if err := dec.Decode(&l); err != nil {
		return omega.Metric{}, nil, err
	}
	if dec.More() {
		return omega.Metric{}, nil, errors.New("more than one JSON value on the line")
	}
	name := l.Metric
	if name == "" {
		name = l.Name
	}
	if name == "" || l.Metric != "" && l.Name != "" {
		return omega.Metric{}, nil, errors.New(`a line needs one name: "metric" (or "name")`)
	}
	if l.Metadata != nil && l.Labels != nil {
		return omega.Metric{}, nil, errors.New(`"metadata" and "labels" both given`)
	}
	m := omega.Metric{Name: name, Metadata: l.Metadata}
	if m.Metadata == nil {
		m.Metadata = l.Labels
	}
	if l.BatchID != nil || l.CertID != nil {
		md := make(map[string]string, len(m.Metadata)+2)
		for k, v := range m.Metadata {
			md[k] = v
		}
		if l.BatchID != nil {
			md["batch_id"] = strconv.FormatUint(*l.BatchID, 10)
		}
		if l.CertID != nil {
			md["cert_id"] = l.CertID.String()
		}
		m.Metadata = md
	}
	switch v := string(l.Value); v {
	case "":
		return omega.Metric{}, nil, errors.New(`no "value"`)
	case "null":
		m.Value = math.NaN() // what a sink writes for a value that is no number
	default:
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return omega.Metric{}, nil, fmt.Errorf("value %s is not a number", v)
		}
		m.Value = f
	}
	return m, l.SeqID, nil
}

// writeFileAtomic writes b to path through a temporary file renamed into
// place, so that path is never left half written.
func writeFileAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
