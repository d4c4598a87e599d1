package game

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// The arena's fixed dimensions and limits.
const (
	// Width and Height are the arena's size in cells.
	Width, Height = 16, 16
	// Coins is how many coins lie in the arena at any time.
	Coins = 4
	// MaxPlayers is how many players a room admits.
	MaxPlayers = 16
	// MaxIDLen is the longest room or player ID.
	MaxIDLen = 64
)

// Errors the rules return for inputs they refuse. The server answers them
// as 4xx errors; they never change the state.
var (
	// ErrBadID is returned for a room or player ID that is empty, longer
	// than MaxIDLen or not made of [A-Za-z0-9_-].
	ErrBadID = errors.New("game: bad id")
	// ErrBadMove is returned for a move that is not one of Moves.
	ErrBadMove = errors.New("game: bad move")
	// ErrSeqGap is returned for an input whose sequence number is not the
	// next one after the player's last applied input (inputs are applied
	// in order, without gaps).
	ErrSeqGap = errors.New("game: sequence gap")
	// ErrRoomFull is returned for a new player in a room of MaxPlayers.
	ErrRoomFull = errors.New("game: room full")
)

// Moves are the moves an input may carry.
var Moves = []string{"up", "down", "left", "right", "stay"}

// Input is one player action. Seq numbers a player's inputs 1, 2, 3, …;
// the rules apply them in that order, each exactly once.
type Input struct {
	Player string `json:"player"`
	Seq    uint64 `json:"seq"`
	Move   string `json:"move"`
}

// Validate checks the input's fields (not its sequence number).
func (in Input) Validate() error {
	if err := ValidateID(in.Player); err != nil {
		return fmt.Errorf("player: %w", err)
	}
	if !slices.Contains(Moves, in.Move) {
		return fmt.Errorf("%w %q (want one of %s)", ErrBadMove, in.Move, strings.Join(Moves, ", "))
	}
	if in.Seq == 0 {
		return fmt.Errorf("%w: seq starts at 1", ErrSeqGap)
	}
	return nil
}

// ValidateID checks a room or player ID.
func ValidateID(id string) error {
	if id == "" || len(id) > MaxIDLen {
		return fmt.Errorf("%w: %q must be 1 to %d characters", ErrBadID, id, MaxIDLen)
	}
	for _, c := range []byte(id) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: %q may only hold A-Z a-z 0-9 - _", ErrBadID, id)
		}
	}
	return nil
}

// Point is a cell of the arena.
type Point struct {
	X int `json:"x"`
	Y int `json:"y"`
}

// Player is one player's state in a room.
type Player struct {
	ID string `json:"id"`
	Point
	Score int `json:"score"`
	// Applied is how many of the player's inputs the room applied: the
	// sequence number of the last one.
	Applied uint64 `json:"applied"`
}

// State is a room's whole game state. Its rules are deterministic: the same
// state and the same inputs give the same next state, on every replica.
type State struct {
	Room    string   `json:"room"`
	Tick    uint64   `json:"tick"`
	Players []Player `json:"players"` // sorted by ID
	Coins   []Point  `json:"coins"`
	// RNG is the coin generator's state, seeded from the room ID.
	RNG uint64 `json:"rng"`
}

// NewState returns the initial state of room: tick 0, no players, Coins
// coins placed by the generator seeded with the room ID.
func NewState(room string) *State {
	s := &State{Room: room, RNG: seed(room)}
	for len(s.Coins) < Coins {
		s.Coins = append(s.Coins, s.freeCell())
	}
	return s
}

// Clone returns a deep copy of s.
func (s *State) Clone() *State {
	c := *s
	c.Players = slices.Clone(s.Players)
	c.Coins = slices.Clone(s.Coins)
	return &c
}

// Player returns the player with id, or nil.
func (s *State) Player(id string) *Player {
	i, ok := slices.BinarySearchFunc(s.Players, id, func(p Player, id string) int { return strings.Compare(p.ID, id) })
	if !ok {
		return nil
	}
	return &s.Players[i]
}

// Result is what Step did with one input: applied at Tick, or refused with
// Err (the state is unchanged by a refused input). Duplicate is true for an
// input already applied earlier (its Seq is at most the player's Applied);
// it is not applied again and carries no error.
type Result struct {
	Input     Input
	Tick      uint64
	Duplicate bool
	Err       error
}

// Step advances s by one tick, applying inputs in a deterministic order (by
// player, then sequence number, whatever order they arrived in), and
// returns one Result per input in the order given.
func (s *State) Step(inputs []Input) []Result {
	s.Tick++
	order := make([]int, len(inputs))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		if c := strings.Compare(inputs[a].Player, inputs[b].Player); c != 0 {
			return c
		}
		return cmp.Compare(inputs[a].Seq, inputs[b].Seq)
	})
	res := make([]Result, len(inputs))
	for _, i := range order {
		res[i] = s.apply(inputs[i])
	}
	return res
}

// apply applies one input at the current tick.
func (s *State) apply(in Input) Result {
	r := Result{Input: in, Tick: s.Tick}
	if r.Err = in.Validate(); r.Err != nil {
		return r
	}
	p := s.Player(in.Player)
	if p == nil {
		if len(s.Players) >= MaxPlayers {
			r.Err = fmt.Errorf("%w: %d players", ErrRoomFull, MaxPlayers)
			return r
		}
		p = s.join(in.Player)
	}
	switch {
	case in.Seq <= p.Applied:
		r.Duplicate = true
		return r
	case in.Seq != p.Applied+1:
		r.Err = fmt.Errorf("%w: player %s sent seq %d, expected %d", ErrSeqGap, in.Player, in.Seq, p.Applied+1)
		return r
	}
	p.Applied = in.Seq
	switch in.Move {
	case "up":
		p.Y = max(p.Y-1, 0)
	case "down":
		p.Y = min(p.Y+1, Height-1)
	case "left":
		p.X = max(p.X-1, 0)
	case "right":
		p.X = min(p.X+1, Width-1)
	}
	if i := slices.Index(s.Coins, p.Point); i >= 0 {
		p.Score++
		s.Coins[i] = s.freeCell()
	}
	return r
}

// join adds a player at its start cell (derived from its ID) and returns it.
func (s *State) join(id string) *Player {
	h := seed(id)
	p := Player{ID: id, Point: Point{X: int(h % Width), Y: int(h / Width % Height)}}
	i, _ := slices.BinarySearchFunc(s.Players, id, func(p Player, id string) int { return strings.Compare(p.ID, id) })
	s.Players = slices.Insert(s.Players, i, p)
	return &s.Players[i]
}

// freeCell draws cells from the generator until one holds no coin.
func (s *State) freeCell() Point {
	for {
		s.RNG += 0x9e3779b97f4a7c15
		v := mix(s.RNG)
		p := Point{X: int(v % Width), Y: int(v / Width % Height)}
		if !slices.Contains(s.Coins, p) {
			return p
		}
	}
}

// seed hashes s (FNV-1a) into a generator seed; it is the same in every
// process.
func seed(s string) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range []byte(s) {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

// mix is the splitmix64 finalizer.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
