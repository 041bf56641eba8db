-------------------------------- MODULE OMEGA --------------------------------
(***************************************************************************)
(* What omega's Kernel promises (SPEC sections 4 to 8), as a state machine *)
(* small enough to read in one sitting.                                    *)
(*                                                                         *)
(* Nodes emit events; faulty ones equivocate, reuse ids and break          *)
(* monotonicity. The sequencer drops exact redeliveries, logs the rest and *)
(* holds events whose dependencies have not arrived in a bounded pending   *)
(* buffer, which releases them when they arrive or when they expire. The   *)
(* coordinator cuts batches, the checker decides each into a Merge or an   *)
(* Obstruction (whose conflict set is quarantined, the rest checked again  *)
(* as the next batch). Decisions are logged as BATCH records, certified    *)
(* in a linked chain once the log is durable through them, and a crash     *)
(* keeps the synced prefix of the log and any prefix of what was not       *)
(* synced (a torn tail). Damage found at restart puts the kernel in safe   *)
(* mode, where no merge is decided until the embedding program resumes.   *)
(*                                                                         *)
(* Every action and invariant below has a Go mirror of the same name in    *)
(* internal/model (the trace validator) and a test that holds the real     *)
(* Kernel to it; formal/README.md lists them.                              *)
(***************************************************************************)
EXTENDS Naturals, Sequences, FiniteSets

CONSTANTS
    Nodes,       \* the nodes that emit events; each node is one stream
    Faulty,      \* the nodes that may emit anything at all
    Ids,         \* event ids
    MaxLamport,  \* lamports range over 1..MaxLamport
    MaxEvents,   \* most distinct contents emitted, to keep the model finite
    BatchSize,   \* most events a batch holds
    MaxPending,  \* the pending buffer's size
    MaxCrashes   \* most crashes, to keep the model finite

ASSUME /\ Faulty \subseteq Nodes
       /\ MaxLamport \in Nat \ {0}
       /\ BatchSize \in Nat \ {0}
       /\ MaxPending \in Nat \ {0}
       /\ MaxEvents \in Nat
       /\ MaxCrashes \in Nat

Predicates == {1001, 1002, 1003, 2001, 2002, 3001}

(* An event: its id, its node (and stream), its lamport, the ids it       *)
(* depends on, and whether its payload hash matches its payload. Two      *)
(* events are identical copies when the records are equal.               *)
Events == [id: Ids, node: Nodes, lam: 1..MaxLamport, deps: SUBSET Ids, ok: BOOLEAN]

(* A log record: an EVENT frame, or a BATCH frame holding the decision on *)
(* the contents of one batch. `safe` is a history field: whether the      *)
(* kernel was in safe mode when it decided.                               *)
EventRec(e) == [type |-> "event", ev |-> e]

VARIABLES
    sent,      \* the events nodes have emitted: the network may deliver any of them, any number of times
    log,       \* the event log: a sequence of records
    synced,    \* the log's durable prefix: log[1..synced] survives a crash
    ready,     \* events released to batches, in arrival order
    pend,      \* the pending buffer: events waiting for dependencies
    blocked,   \* events of merges safe mode held back, for Resume
    inflight,  \* events logged whose Submit has not returned
    acked,     \* events whose Submit returned: they are durable
    certs,     \* the certificate chain
    csynced,   \* the chain's durable prefix
    nextBatch, \* the next batch id
    safe,      \* safe mode
    up,        \* the process is running
    damaged,   \* damage was done to the files while the process was down
    crashes,   \* crashes so far
    snap,      \* the log position the newest snapshot describes
    redelivered \* the redeliveries the sequencer dropped (counted: sequencer.drop)

vars == <<sent, log, synced, ready, pend, blocked, inflight, acked, certs,
          csynced, nextBatch, safe, up, damaged, crashes, snap, redelivered>>

-----------------------------------------------------------------------------
(* What the log says. *)

Range(s) == {s[i] : i \in DOMAIN s}
Ids0(S) == {e.id : e \in S}
BatchAt(l) == {i \in 1..Len(l) : l[i].type = "batch"}
MergeAt(l) == {i \in BatchAt(l) : l[i].kind = "merge"}

\* The events accepted by the merges before position i: the State there.
AcceptedBefore(l, i) == UNION {l[j].batch : j \in {k \in MergeAt(l) : k < i}}
Accepted(l) == AcceptedBefore(l, Len(l) + 1)
Quarantined(l) == UNION {l[j].quarantine : j \in BatchAt(l) \ MergeAt(l)}
EventAt(l) == {i \in 1..Len(l) : l[i].type = "event"}
DecidedBy(r) == IF r.kind = "merge" THEN r.batch ELSE r.quarantine
\* The events logged and not decided since: a quarantined event received
\* again is logged again, and decided again.
Undecided(l) == {l[i].ev : i \in {k \in EventAt(l) :
                    ~\E j \in BatchAt(l) : j > k /\ l[k].ev \in DecidedBy(l[j])}}
LastBatch(l) == IF BatchAt(l) = {} THEN 0
                ELSE LET m == CHOOSE i \in BatchAt(l) : \A j \in BatchAt(l) : j <= i
                     IN l[m].bid

\* The head of a node's stream in a State: its highest accepted lamport.
Head(acc, n) == IF \E a \in acc : a.node = n
                THEN (CHOOSE a \in acc : a.node = n /\ \A b \in acc : b.node = n => b.lam <= a.lam).lam
                ELSE 0

-----------------------------------------------------------------------------
(* The checker (SPEC 4): when does predicate p hold against event e of    *)
(* batch B, decided on the State acc? B is a set: identical copies are    *)
(* one content.                                                           *)

\* The content of id d a dependency refers to: the batch's first, else the State's.
DepLam(d, B, acc) ==
    IF \E f \in B : f.id = d
    THEN (CHOOSE f \in B : f.id = d /\ \A g \in B : g.id = d => f.lam <= g.lam).lam
    ELSE (CHOOSE a \in acc : a.id = d).lam

Violates(p, e, B, acc) ==
    CASE p = 2001 -> ~e.ok
      [] p = 3001 -> \E f \in B : f.id = e.id /\ f # e
      [] p = 1002 -> e.id \in Ids0(acc)
      [] p = 1001 -> \/ \E f \in B : f # e /\ f.node = e.node /\ f.lam = e.lam /\ f.id <= e.id
                     \/ /\ ~\E f \in B : f.node = e.node /\ f.lam < e.lam
                        /\ Head(acc, e.node) > 0 /\ e.lam <= Head(acc, e.node)
      [] p = 1003 -> \E d \in e.deps : d \in Ids0(B) \cup Ids0(acc) /\ DepLam(d, B, acc) >= e.lam
      [] p = 2002 -> \E d \in e.deps : d \notin Ids0(B) \cup Ids0(acc)

Clean(B, acc) == \A p \in Predicates, e \in B : ~Violates(p, e, B, acc)

-----------------------------------------------------------------------------
(* The actions. *)

\* A node emits an event. A correct node's events have fresh ids, rising
\* lamports, sound payload hashes and dependencies on events it has seen
\* with lower lamports; a faulty node's events are anything.
Emit(n, e) ==
    /\ Cardinality(sent) < MaxEvents
    /\ e.node = n /\ e \notin sent
    /\ n \notin Faulty =>
          /\ e.ok
          /\ e.id \notin Ids0(sent)
          /\ \A f \in sent : f.node = n => f.lam < e.lam
          /\ \A d \in e.deps : \E f \in sent : f.id = d /\ f.lam < e.lam
    /\ sent' = sent \cup {e}
    /\ UNCHANGED <<log, synced, ready, pend, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* The dependencies of e that have arrived: accepted, or released ahead of it.
Arrived(e) == {d \in e.deps : d = e.id \/ d \in Ids0(Accepted(log)) \cup Ids0(Range(ready))}

\* The sequencer drops an exact redelivery: a content accepted, or logged
\* and not decided.
Drop(e) ==
    /\ up /\ e \in sent
    /\ e \in Accepted(log) \cup Undecided(log)
    /\ redelivered' = redelivered \cup {e}
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap>>

\* The sequencer logs an event, and releases it or holds it. A full pending
\* buffer is backpressure: nothing is received until there is room.
Receive(e) ==
    /\ up /\ e \in sent
    /\ e \notin Accepted(log) \cup Undecided(log)
    /\ Cardinality(pend) < MaxPending
    /\ log' = Append(log, EventRec(e))
    /\ inflight' = inflight \cup {e}
    /\ IF Arrived(e) = e.deps
       THEN ready' = Append(ready, e) /\ pend' = pend
       ELSE pend' = pend \cup {e} /\ ready' = ready
    /\ UNCHANGED <<sent, synced, blocked, acked, certs, csynced, nextBatch, safe, up,
                   damaged, crashes, snap, redelivered>>

\* The dependencies of e that were received and handled: arrived, or
\* quarantined since (a dependency counted as arrived when e came, then
\* obstructed, is not waited for again: the checker judges e without it).
Settled(e) == {d \in e.deps : d \in Arrived(e) \/ d \in Ids0(Quarantined(log))}

\* A held event whose dependencies have arrived is released.
Release(e) ==
    /\ up /\ e \in pend
    /\ Settled(e) = e.deps
    /\ pend' = pend \ {e}
    /\ ready' = Append(ready, e)
    /\ UNCHANGED <<sent, log, synced, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* A held event's age ran out: it goes to the checker anyway (2002).
Expire(e) ==
    /\ up /\ e \in pend
    /\ pend' = pend \ {e}
    /\ ready' = Append(ready, e)
    /\ UNCHANGED <<sent, log, synced, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* The coordinator cuts the first n released events into a batch (by size,
\* or by the flush timer for fewer), and the checker decides it.
Decide(n) ==
    /\ up /\ 1 <= n /\ n <= BatchSize /\ n <= Len(ready)
    /\ LET B   == Range(SubSeq(ready, 1, n))
           acc == Accepted(log)
           rest == SubSeq(ready, n + 1, Len(ready))
       IN
       IF Clean(B, acc)
       THEN IF safe
            THEN \* Safe mode: the merge is blocked, not decided.
                 /\ blocked' = blocked \o SubSeq(ready, 1, n)
                 /\ ready' = rest
                 /\ UNCHANGED <<log, nextBatch>>
            ELSE /\ log' = Append(log, [type |-> "batch", bid |-> nextBatch, kind |-> "merge",
                                        batch |-> B, pred |-> 0, at |-> CHOOSE x \in B : TRUE,
                                        quarantine |-> {}, safe |-> safe])
                 /\ ready' = rest
                 /\ nextBatch' = nextBatch + 1
                 /\ UNCHANGED blocked
       ELSE \* An obstruction: a predicate that holds at an event, and a
            \* conflict set holding that event's id (and perhaps others:
            \* a missing dependency's). The batch's events with those ids
            \* are quarantined; the rest are checked again, first.
            \E p \in Predicates, e \in B, C \in SUBSET Ids :
               /\ Violates(p, e, B, acc)
               /\ e.id \in C
               /\ LET Q == {f \in B : f.id \in C}
                      again == SelectSeq(SubSeq(ready, 1, n), LAMBDA f : f \notin Q)
                  IN /\ log' = Append(log, [type |-> "batch", bid |-> nextBatch, kind |-> "obstruction",
                                            batch |-> B, pred |-> p, at |-> e,
                                            quarantine |-> Q, safe |-> safe])
                     /\ ready' = again \o rest
               /\ nextBatch' = nextBatch + 1
               /\ UNCHANGED blocked
    /\ UNCHANGED <<sent, synced, pend, inflight, acked, certs, csynced, safe, up,
                   damaged, crashes, snap, redelivered>>

\* An fsync: the log is durable through what was written when it started
\* (group commit: it covers every record written meanwhile).
Sync ==
    /\ up
    /\ \E k \in (synced + 1)..Len(log) : synced' = k
    /\ UNCHANGED <<sent, log, ready, pend, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* Submit returns for an event once the log is durable through it.
Ack(e) ==
    /\ up /\ e \in inflight
    /\ \E i \in 1..synced : log[i] = EventRec(e)
    /\ inflight' = inflight \ {e}
    /\ acked' = acked \cup {e}
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* The next BATCH record, once durable, is certified: the certificate links
\* to the one before it. The k-th certificate is the k-th BATCH record's.
Certify ==
    /\ up
    /\ LET durable == {i \in BatchAt(log) : i <= synced}
           k == Len(certs) + 1
       IN /\ Cardinality(durable) >= k
          /\ LET i == CHOOSE j \in durable : Cardinality({m \in durable : m <= j}) = k
             IN certs' = Append(certs, [bid |-> log[i].bid, kind |-> log[i].kind,
                                        prev |-> IF k = 1 THEN 0 ELSE certs[k - 1].bid,
                                        safe |-> safe, at |-> i])
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, inflight, acked, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* An fsync of the certificate store. A decision is reported only after it.
SyncCerts ==
    /\ up /\ csynced < Len(certs)
    /\ csynced' = Len(certs)
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, inflight, acked, certs,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* A snapshot describes the durable log; none in safe mode.
Snapshot ==
    /\ up /\ ~safe /\ snap < synced
    /\ snap' = synced
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, redelivered>>

\* The process dies. The synced prefix survives, and of the rest any
\* prefix: a torn tail, whose partial last record recovery cuts off.
\* Submits in flight get no answer. So with the certificate store: the
\* certificates it loses are made again, the same, from the log.
Crash ==
    /\ up /\ crashes < MaxCrashes
    /\ \E k \in synced..Len(log) :
          /\ log' = SubSeq(log, 1, k)
          /\ synced' = k
    /\ \E c \in csynced..Len(certs) :
          /\ certs' = SubSeq(certs, 1, c)
          /\ csynced' = c
    /\ up' = FALSE
    /\ crashes' = crashes + 1
    /\ ready' = << >> /\ pend' = {} /\ blocked' = << >> /\ inflight' = {}
    /\ UNCHANGED <<sent, acked, nextBatch, safe, damaged, snap, redelivered>>

\* While the process is down, a file is damaged in the middle (a corrupt
\* frame, a broken certificate link): recovery reads around it, losing no
\* logged event, and reports it.
Damage ==
    /\ ~up /\ ~damaged
    /\ damaged' = TRUE
    /\ UNCHANGED <<sent, log, synced, ready, pend, blocked, inflight, acked, certs, csynced,
                   nextBatch, safe, up, crashes, snap, redelivered>>

\* Restart: recover the log, load the snapshot, replay the rest (the State
\* is what the log's merges accepted), certify again what was logged and
\* not certified (Certify, from the same records), and take the logged,
\* undecided events in again. Damage puts the kernel in safe mode.
Restart ==
    /\ ~up
    /\ up' = TRUE
    /\ safe' = (safe \/ damaged)
    /\ damaged' = FALSE
    /\ nextBatch' = LastBatch(log) + 1
    \* The undecided events in some order, a prefix of it released (each
    \* after the dependencies it has), the rest held.
    /\ LET U == Undecided(log) IN
       \E order \in [1..Cardinality(U) -> U], m \in 0..Cardinality(U) :
          /\ Range(order) = U
          /\ \A i \in 1..m : \A d \in order[i].deps :
                \/ d = order[i].id \/ d \in Ids0(Accepted(log))
                \/ \E j \in 1..(i - 1) : order[j].id = d
          /\ ready' = SubSeq(order, 1, m)
          /\ pend' = U \ Range(ready')
    /\ UNCHANGED <<sent, log, synced, blocked, inflight, acked, certs, csynced, crashes, snap, redelivered>>

\* In safe mode, a released event that depends on a blocked one is blocked
\* too, rather than obstructed for want of it.
BlockDependent(e) ==
    /\ up /\ safe
    /\ \E i \in 1..Len(ready) :
          /\ ready[i] = e
          /\ \E d \in e.deps : d \in Ids0(Range(blocked))
          /\ ready' = SubSeq(ready, 1, i - 1) \o SubSeq(ready, i + 1, Len(ready))
          /\ blocked' = Append(blocked, e)
    /\ UNCHANGED <<sent, log, synced, pend, inflight, acked, certs, csynced,
                   nextBatch, safe, up, damaged, crashes, snap, redelivered>>

\* The embedding program leaves safe mode: blocked events are batched
\* again, ahead of the others.
Resume ==
    /\ up /\ safe
    /\ safe' = FALSE
    /\ ready' = blocked \o ready
    /\ blocked' = << >>
    /\ UNCHANGED <<sent, log, synced, pend, inflight, acked, certs, csynced,
                   nextBatch, up, damaged, crashes, snap, redelivered>>

-----------------------------------------------------------------------------

Init ==
    /\ sent = {} /\ log = << >> /\ synced = 0
    /\ ready = << >> /\ pend = {} /\ blocked = << >>
    /\ inflight = {} /\ acked = {} /\ certs = << >> /\ csynced = 0
    /\ nextBatch = 1 /\ safe = FALSE /\ up = TRUE /\ damaged = FALSE
    /\ crashes = 0 /\ snap = 0 /\ redelivered = {}

Next ==
    \/ \E n \in Nodes, e \in Events : Emit(n, e)
    \/ \E e \in Events : Drop(e) \/ Receive(e) \/ Release(e) \/ Expire(e) \/ Ack(e) \/ BlockDependent(e)
    \/ \E n \in 1..BatchSize : Decide(n)
    \/ Sync \/ Certify \/ SyncCerts \/ Snapshot \/ Crash \/ Damage \/ Restart \/ Resume

\* Weak fairness on the kernel's own steps (and on the embedding program's
\* Resume); crashes are bounded by MaxCrashes.
Fairness ==
    /\ WF_vars(Sync) /\ WF_vars(Certify) /\ WF_vars(SyncCerts) /\ WF_vars(Restart) /\ WF_vars(Resume)
    /\ \A e \in Events : WF_vars(Release(e)) /\ WF_vars(Expire(e)) /\ WF_vars(Ack(e))
    /\ WF_vars(\E n \in 1..BatchSize : Decide(n))

Spec == Init /\ [][Next]_vars /\ Fairness

-----------------------------------------------------------------------------
(* The invariants: what omega promises in every state. *)

TypeOK ==
    /\ sent \subseteq Events
    /\ synced \in 0..Len(log)
    /\ csynced \in 0..Len(certs)
    /\ pend \subseteq Events /\ inflight \subseteq Events /\ acked \subseteq Events
    /\ redelivered \subseteq sent
    /\ nextBatch \in Nat \ {0}
    /\ safe \in BOOLEAN /\ up \in BOOLEAN /\ damaged \in BOOLEAN

\* No id is accepted twice: not in two merges, not twice in one.
NoDoubleAccept ==
    \A i, j \in MergeAt(log) : \A e \in log[i].batch, f \in log[j].batch :
        (e.id = f.id) => (i = j /\ e = f)

\* Every accepted event's dependencies were accepted no later.
DepsAcceptedNoLater ==
    \A i \in MergeAt(log) : \A e \in log[i].batch : \A d \in e.deps :
        d \in Ids0(AcceptedBefore(log, i) \cup log[i].batch)

\* Per stream, lamports strictly increase in acceptance order.
LamportMonotonic ==
    \A i, j \in MergeAt(log) : \A e \in log[i].batch, f \in log[j].batch :
        (e.node = f.node /\ e # f /\ i <= j) => (i = j => e.lam # f.lam) /\ (i < j => e.lam < f.lam)

\* The clock condition: an accepted event's dependencies have lower lamports.
ClockCondition ==
    \A e \in Accepted(log) : \A d \in e.deps :
        \A f \in Accepted(log) : f.id = d => f.lam < e.lam

\* Every certificate links to the one before it; batch ids increase.
ChainLinked ==
    \A k \in 2..Len(certs) : certs[k].prev = certs[k - 1].bid /\ certs[k - 1].bid < certs[k].bid

\* Every certificate is a durable BATCH record's, and says what it decided.
CertifiedIsLogged ==
    \A k \in 1..Len(certs) :
        /\ certs[k].at <= synced
        /\ log[certs[k].at].bid = certs[k].bid /\ log[certs[k].at].kind = certs[k].kind

\* No merge is decided, so none is certified, in safe mode.
NoMergeInSafeMode ==
    /\ \A i \in MergeAt(log) : ~log[i].safe
    /\ \A k \in 1..Len(certs) : certs[k].kind = "merge" => ~log[certs[k].at].safe

\* Every obstruction names a violation that holds of its evidence.
ObstructionJustified ==
    \A i \in BatchAt(log) \ MergeAt(log) :
        /\ log[i].at \in log[i].batch
        /\ log[i].at \in log[i].quarantine
        /\ Violates(log[i].pred, log[i].at, log[i].batch, AcceptedBefore(log, i))

\* No event whose Submit returned is lost across a crash.
NoAckedLoss == \A e \in acked : EventRec(e) \in Range(SubSeq(log, 1, synced))

\* A snapshot describes only what is durable.
SnapshotDurable == snap <= synced

Invariants ==
    /\ TypeOK /\ NoDoubleAccept /\ DepsAcceptedNoLater /\ LamportMonotonic
    /\ ClockCondition /\ ChainLinked /\ CertifiedIsLogged /\ NoMergeInSafeMode
    /\ ObstructionJustified /\ NoAckedLoss /\ SnapshotDurable

(* Liveness: every event acknowledged is eventually decided. *)
Decided(e) == e \in Accepted(log) \cup Quarantined(log)
EventuallyDecided == \A e \in Events : (e \in acked) ~> Decided(e)

=============================================================================
