package cluster

import (
	"github.com/cespare/xxhash/v2"
)

// OwnerOf returns the ID of the member of location that owns key under rendezvous
// (highest random weight) hashing, or "" when location has no member in members. The
// weight of a member for a key is mix(xxh64(ID) XOR xxh64(key)), where xxh64 is the
// 64-bit xxHash with seed 0 and mix the SplitMix64 finalizer; the highest weight wins and
// a tie goes to the smaller ID. The key is hashed once per call, so an assignment
// costs one short hash and one mix per member. The result depends only on the IDs and
// locations in members, not on their order, and is the same in every process, so a
// leader can check that the sender of a result owns its target under the leader's own
// view. When a member joins or leaves, only the keys it wins or held move.
func OwnerOf(members []Member, location, key string) string {
	return ownerOf(members, nil, location, key)
}

// ownerOf is OwnerOf with the members' ID hashes given (in the order of members), or
// computed when ids is nil.
func ownerOf(members []Member, ids []uint64, location, key string) string {
	kh := xxhash.Sum64String(key)
	best, bestID := uint64(0), ""
	for i := range members {
		m := &members[i]
		if m.Location != location {
			continue
		}
		var h uint64
		if ids != nil {
			h = ids[i]
		} else {
			h = xxhash.Sum64String(m.ID)
		}
		w := mix(h ^ kh)
		if bestID == "" || w > best || (w == best && m.ID < bestID) {
			best, bestID = w, m.ID
		}
	}
	return bestID
}

// idHashes returns the ID hashes of members for ownerOf.
func idHashes(members []Member) []uint64 {
	h := make([]uint64, len(members))
	for i, m := range members {
		h[i] = xxhash.Sum64String(m.ID)
	}
	return h
}

// mix is the SplitMix64 finalizer: every input bit flips each output bit with a
// probability close to one half, so weights of different members for one key are as
// good as independent.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
