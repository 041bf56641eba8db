package framelog_test

import (
	"bytes"
	"fmt"
	"io"

	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/framelog"
)

// Write EVENT frames to a log and read them back.
func ExampleWriter() {
	var buf bytes.Buffer
	w, err := framelog.NewWriter(&buf, omega.DefaultBinding().Header(), nil)
	if err != nil {
		panic(err)
	}
	for _, e := range []omega.Event{
		{ID: omega.ID64(1), NodeID: 1, Lamport: 1, PayloadHash: omega.PayloadHash([]byte("a")), Payload: []byte("a")},
		{ID: omega.ID64(2), NodeID: 1, Lamport: 2, Deps: []omega.EventID{omega.ID64(1)}, PayloadHash: omega.PayloadHash([]byte("b")), Payload: []byte("b")},
	} {
		enc, _ := e.MarshalBinary()
		if _, err := w.Append(framelog.FrameEvent, enc); err != nil {
			panic(err)
		}
	}
	if err := w.Sync(); err != nil {
		panic(err)
	}

	s := framelog.NewScanner(buf.Bytes(), nil)
	for {
		f, err := s.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		e, err := omega.DecodeEvent(f.Payload, omega.Limits{})
		if err != nil {
			panic(err)
		}
		fmt.Println(f.Offset, f.Type, e.ID, string(e.Payload))
	}
	// Output:
	// 64 EVENT 1 a
	// 157 EVENT 2 b
}
