// Package cluster lets several portpatrol instances and probe-only agents share the
// work over NATS JetStream: who is alive, who probes which target, who alerts, and how
// results reach the one that alerts.
//
// Membership. Every member puts its Member record under its ID in the KV bucket
// "<prefix>_members" every Heartbeat. The bucket's MaxAge is the TTL, so the key of a
// member that stops (crash, cut link) expires; a member that leaves with Close deletes
// its key and the others see it at once through a watch. Since an expiry by MaxAge may
// come late and leave no marker in the watch, every node also drops a member whose
// key's revision has not moved for TTL on the node's own monotonic clock (confirmed by
// a read), and lists the keys to find members the watch missed. Only presence and
// revisions count: no member compares timestamps written by another, so clock skew
// does not matter. Each node numbers its own view: the epoch increments on every
// change of the live set it sees. A node cut off from NATS keeps its last view (and
// itself in it), so it keeps probing what it owned.
//
// Assignment. OwnerOf gives every key to one live member of a location by rendezvous
// (highest random weight) hashing: each member's weight for a key is the SplitMix64
// finalizer of the XOR of the xxHash64 of its ID and of the key, and the heaviest
// wins. It is the same in every
// process, needs no coordination, and a member that joins or leaves moves only the
// keys it wins or held. The alerting leader uses the same function to check that the
// sender of a result owns its target under the leader's own view (fencing by
// assignment).
//
// Leadership. One alerting leader at a time holds the key "alerting" in the bucket
// "<prefix>_leader" (MaxAge = TTL). A candidate creates the key when it is absent; the
// holder renews it every Heartbeat with an update conditional on the revision it wrote
// last, so a renewal fails as soon as anyone else wrote the key. The revision at
// acquisition is the fencing token: it grows with every new term, so a store can refuse
// writes of an older term. A holder whose renewals fail for half the TTL gives up
// its term (its context is cancelled) TTL/2 before its key can expire and a
// successor can win, measured on its own monotonic clock from before its last
// successful renewal was sent. A holder that steps down deletes the key so that a
// successor wins at once. The value of the key is {"id": leader, "token": token}.
//
// Results. Members publish results to the stream "<PREFIX>_RESULTS" on the subject
// "<prefix>.results.<location>", each with a message ID so that a result sent again
// after a lost acknowledgement is stored once (within the stream's two-minute
// duplicate window). While NATS is unreachable, results wait in a bounded local buffer
// (oldest dropped first, counted) that is sent on reconnect. The leader reads the
// stream through the durable consumer "<prefix>_alerting" with explicit
// acknowledgements; a new leader resumes after the last acknowledged result.
//
// What is at-least-once: a result reaches the leader at least once. A result handled
// but not acknowledged before a failover, or sent again from the buffer after the
// duplicate window, comes again, so handling must be idempotent (the alert engine
// keys incidents and notifications). Nothing here is exactly-once.
package cluster
