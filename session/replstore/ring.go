package replstore

import (
	"hash/fnv"
	"sort"
)

// node is a live member as the ring sees it.
type node struct {
	Name    string
	RPCAddr string
}

// owners returns the owner set of key among nodes, primary first: the
// backups+1 nodes with the highest rendezvous score (backups -1 means all).
// Rendezvous hashing moves only the keys of a member that joins or leaves,
// and a key's surviving owners keep their rank, so after one membership
// change at least one old owner is still in the new owner set.
func owners(key string, nodes []node, backups int) []node {
	n := backups + 1
	if backups < 0 || n > len(nodes) {
		n = len(nodes)
	}
	type scored struct {
		node
		score uint64
	}
	s := make([]scored, len(nodes))
	for i, nd := range nodes {
		s[i] = scored{nd, score(nd.Name, key)}
	}
	sort.Slice(s, func(i, j int) bool {
		if s[i].score != s[j].score {
			return s[i].score > s[j].score
		}
		return s[i].Name < s[j].Name
	})
	out := make([]node, n)
	for i := range out {
		out[i] = s[i].node
	}
	return out
}

// score is the rendezvous weight of (member, key): FNV-1a finished with the
// splitmix64 mixer, so that similar names spread well. It must be the same in
// every process, so it uses no per-process seed.
func score(member, key string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	h.Write([]byte{0})
	h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
