package omegatest

import (
	"github.com/omega-sheaf/omega"
	"github.com/omega-sheaf/omega/predicates"
)

// Domain returns a domain predicate with entry whose Violated calls f. f must
// be safe for concurrent calls, as [omega.DomainPredicate] requires.
func Domain(entry predicates.Entry, f func(e *omega.Event, prior *omega.State) bool) omega.DomainPredicate {
	return domainFunc{entry, f}
}

type domainFunc struct {
	entry predicates.Entry
	f     func(e *omega.Event, prior *omega.State) bool
}

func (d domainFunc) Entry() predicates.Entry                          { return d.entry }
func (d domainFunc) Violated(e *omega.Event, prior *omega.State) bool { return d.f(e, prior) }
