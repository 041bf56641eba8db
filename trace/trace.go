// Package trace holds the steps a [omega.Kernel] reports, when asked, at
// the boundaries between its goroutines (sequencer, coordinator, checker,
// syncer, certificate store). Each step is named after an action of the
// formal model, formal/OMEGA.tla, so that a recorded run can be checked
// against the model step by step: omegatest.CheckTrace does that, and
// names the first step no action of the model explains.
//
// The package is plain data: it depends on nothing, so that the model's
// transcription can be read apart from the code it judges.
//
// [omega.Kernel]: https://pkg.go.dev/github.com/omega-sheaf/omega#Kernel
package trace

// Action names an action of formal/OMEGA.tla.
type Action string

// The actions a kernel reports. Crash is reported by whoever stopped the
// kernel (a test's harness); a clean Close is, to the model, a Crash after
// which nothing was lost. Emit, Damage and the choice of a torn tail are
// the environment's: the model infers them.
const (
	// Receive: the sequencer logged Events[0], and held it for missing
	// dependencies when Held is set, else released it to the batch queue.
	Receive Action = "Receive"
	// Drop: the sequencer dropped Events[0], an exact redelivery of an
	// event accepted, or logged and not decided.
	Drop Action = "Drop"
	// Release: held Events[0] was released, its dependencies arrived.
	Release Action = "Release"
	// Expire: held Events[0] was released for its age.
	Expire Action = "Expire"
	// Decide: the coordinator cut Events, the head of the batch queue in
	// its order, and the checker decided them: Outcome says how.
	Decide Action = "Decide"
	// BlockDependent: in safe mode, released Events[0] depends on a
	// blocked event and is blocked with it.
	BlockDependent Action = "BlockDependent"
	// Sync: the log is durable through its first Through records since
	// the kernel opened.
	Sync Action = "Sync"
	// Ack: Submit returned for Events, logged and durable.
	Ack Action = "Ack"
	// Certify: the certificate of batch BatchID (Merge or not) with hash
	// Cert, linked to Prev, was appended to the certificate store.
	Certify Action = "Certify"
	// SyncCerts: the certificate store is durable through what was
	// appended.
	SyncCerts Action = "SyncCerts"
	// Snapshot: a snapshot of the log's first Through records since the
	// kernel opened is durable.
	Snapshot Action = "Snapshot"
	// Crash: the process stopped; what was not synced may be lost.
	Crash Action = "Crash"
	// Restart: the kernel opened: its chain ended at CertHead (before it
	// certified again what was logged and not certified: those Certify
	// steps follow), NextBatch is the next batch id, Events are the
	// logged and undecided events it released again, in order, Holding
	// the ones it holds, and Safe says whether it is in safe mode.
	Restart Action = "Restart"
	// Resume: the embedding program left safe mode.
	Resume Action = "Resume"
)

// Outcome is how the checker decided a batch.
type Outcome uint8

const (
	// Merge: every event of the batch was accepted.
	Merge Outcome = iota + 1
	// Obstruction: Predicate holds at an event with id At; the
	// events whose ids are in Conflict are quarantined, the rest go back
	// to the head of the batch queue.
	Obstruction
	// Blocked: a merge in safe mode: not decided, the events held back
	// until Resume.
	Blocked
)

func (o Outcome) String() string {
	switch o {
	case Merge:
		return "merge"
	case Obstruction:
		return "obstruction"
	case Blocked:
		return "blocked"
	}
	return "outcome(?)"
}

// ID is an event id (a u128).
type ID struct{ Hi, Lo uint64 }

// Less orders ids numerically.
func (id ID) Less(o ID) bool { return id.Hi < o.Hi || id.Hi == o.Hi && id.Lo < o.Lo }

// Digest is a 32-byte digest: an event's (identical copies share it) or a
// certificate's.
type Digest [32]byte

// Event is what the model knows of an event.
type Event struct {
	ID        ID
	Node      uint32
	Stream    uint16
	Lamport   uint64
	Deps      []ID
	PayloadOK bool // its payload hash matches its payload
	Digest    Digest
}

// Step is one step of a kernel. The fields an action does not use are
// zero.
type Step struct {
	Action    Action
	Events    []Event
	Held      bool
	Outcome   Outcome
	BatchID   uint64
	Predicate uint32
	At        ID
	Conflict  []ID
	Through   int
	Cert      Digest
	Prev      Digest
	CertHead  Digest
	NextBatch uint64
	Holding   []Event
	Safe      bool
}

// Recorder collects steps; its Record method is what a kernel's trace
// option takes. A kernel makes its calls one at a time.
type Recorder struct {
	Steps []Step
}

// Record appends s.
func (r *Recorder) Record(s Step) { r.Steps = append(r.Steps, s) }
