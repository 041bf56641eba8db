package framelog

import (
	"bytes"
	"io"
	"testing"
)

// lfBenchSizes are whole-frame sizes, the 12-byte frame header included.
var lfBenchSizes = []struct {
	name  string
	frame int
}{
	{"112B", 112},
	{"4KiB", 4096},
}

const lfBenchLogBytes = 64 << 20

// lfBenchLog returns a log of about 64 MiB of frames of frameSize bytes and
// the number of frames in it.
func lfBenchLog(b *testing.B, frameSize int) ([]byte, int) {
	b.Helper()
	payload := make([]byte, frameSize-frameHeaderLen)
	for i := range payload {
		payload[i] = byte(i*7 + 3)
	}
	n := lfBenchLogBytes / frameSize
	log, _ := Header{SchemaVersion: 1}.AppendBinary(make([]byte, 0, HeaderSize+n*frameSize))
	for range n {
		var err error
		if log, err = AppendFrame(log, FrameEvent, payload); err != nil {
			b.Fatal(err)
		}
	}
	return log, n
}

// BenchmarkFrameScan measures the zero-copy reader, CRC checks included.
func BenchmarkFrameScan(b *testing.B) {
	for _, sz := range lfBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			log, n := lfBenchLog(b, sz.frame)
			b.SetBytes(int64(len(log)))
			b.ReportAllocs()
			for b.Loop() {
				s := NewScanner(log, nil)
				got := 0
				for {
					_, err := s.Next()
					if err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
					got++
				}
				if got != n {
					b.Fatalf("scanned %d frames, want %d", got, n)
				}
			}
		})
	}
}

// BenchmarkFrameReader measures the streaming reader over an in-memory
// io.Reader.
func BenchmarkFrameReader(b *testing.B) {
	for _, sz := range lfBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			log, n := lfBenchLog(b, sz.frame)
			b.SetBytes(int64(len(log)))
			b.ReportAllocs()
			rd := bytes.NewReader(log)
			for b.Loop() {
				rd.Reset(log)
				r := NewReader(rd, nil)
				got := 0
				for {
					_, err := r.Next()
					if err != nil {
						if err != io.EOF {
							b.Fatal(err)
						}
						break
					}
					got++
				}
				if got != n {
					b.Fatalf("read %d frames, want %d", got, n)
				}
			}
		})
	}
}

// BenchmarkFrameWriter measures Append through the buffer to io.Discard,
// per frame.
func BenchmarkFrameWriter(b *testing.B) {
	for _, sz := range lfBenchSizes {
		b.Run(sz.name, func(b *testing.B) {
			payload := make([]byte, sz.frame-frameHeaderLen)
			w, err := NewWriter(io.Discard, Header{}, &WriterOptions{Sync: SyncNever})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(sz.frame))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := w.Append(FrameEvent, payload); err != nil {
					b.Fatal(err)
				}
			}
			if err := w.Close(); err != nil {
				b.Fatal(err)
			}
		})
	}
}
