package transparency

import "github.com/omega-sheaf/omega"

// verificationError is a sentinel of omega's verification category:
// errors.Is(err, omega.ErrVerification) holds for every error wrapping
// one, so a caller tells "does not verify" from I/O trouble with one test.
type verificationError string

func (e verificationError) Error() string { return string(e) }

func (e verificationError) Is(target error) bool { return target == omega.ErrVerification }

var (
	// ErrBadCheckpoint: a checkpoint that does not parse, is not signed
	// by the log's key for its size, or lacks the witnesses a policy
	// wants.
	ErrBadCheckpoint error = verificationError("omega: transparency: bad checkpoint")
	// ErrBadProof: a bundle whose certificate is not the leaf its proof
	// leads to in the checkpoint's tree, or that does not parse.
	ErrBadProof error = verificationError("omega: transparency: bad inclusion proof")
	// ErrBadRotation: a rotation statement that does not parse, or is not
	// signed by the outgoing and the incoming key.
	ErrBadRotation error = verificationError("omega: transparency: bad key rotation")
	// ErrFork says that two checkpoints of one log cannot both be true:
	// the log has shown two histories.
	ErrFork error = verificationError("omega: transparency: the log forked")
	// ErrNotConsistent says that a consistency proof does not lead from
	// one checkpoint to the other: a bad proof, or a fork.
	ErrNotConsistent error = verificationError("omega: transparency: no proof of consistency")
)
