// Package game is statelab's real-time game server: rooms of an arena game
// (players move on a grid and collect coins placed by a seeded generator)
// advanced in ticks, with exactly one owner replica per room.
//
// It owns the deterministic rules (State.Step), the room's tick loop, the
// placement of rooms on live replicas (rendezvous hashing over memberlist
// members), the owner lease with its fencing epoch kept in a session.Store
// record together with the room's checkpoint, the strategies that say
// where a room's state lives, and the HTTP and WebSocket API. It does not
// open stores (the command does) and knows nothing of the load balancer
// in front of it. docs/game.md describes the design and what each
// strategy promises.
package game
