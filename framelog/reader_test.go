package framelog

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// A read error met while reading the rest of a frame whose header already
// fails the cheap checks is returned, not a verdict: a frame is judged
// whole, as frameProblem needs it.
func TestFrameReaderReadErrorInBadFrame(t *testing.T) {
	l := lfStdLog(t)
	boom := errors.New("boom")
	for _, f := range [][]byte{
		lfRawFrame(7, 0, make([]byte, 100)), // invalid type under a CRC that holds
		lfRawFrame(1, 1, make([]byte, 100)), // non-zero reserved field
	} {
		b := append(bytes.Clone(l.b), f...)
		r := NewReader(io.MultiReader(bytes.NewReader(b[:len(l.b)+50]), iotest.ErrReader(boom)), nil)
		n := 0
		var err error
		for ; err == nil; n++ {
			_, err = r.Next()
		}
		if err != boom || n-1 != len(l.frames) {
			t.Errorf("frame % x...: %v after %d frames, want boom after %d", f[:12], err, n-1, len(l.frames))
		}
	}
}
