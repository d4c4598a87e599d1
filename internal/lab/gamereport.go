package lab

import (
	"fmt"
)

// newGameView is the report's view of a game run.
func newGameView(r *Run) runView {
	v := newRunView(r)
	v.Anchor = "game-" + v.Anchor
	v.Description = gameDescribe(Scenario(r.Result.Scenario))
	return v
}

// gameDescribe says in one sentence what a game scenario does.
func gameDescribe(s Scenario) string {
	switch s {
	case Steady:
		return "fixed input rate, no faults"
	case Failover:
		return fmt.Sprintf("the owner of the first room is SIGKILLed at %s of the run and restarted at %s", share(gameFaultAt), share(failoverRestartAt))
	case Scaleout:
		return "starts with half the replicas; the rest join at " + share(scaleoutAddAt) + " and take over the rooms they win"
	case Pause:
		return fmt.Sprintf("the owner of the first room is SIGSTOPped at %s of the run for %d leases, then SIGCONTed", share(gameFaultAt), gamePauseLeases)
	}
	return ""
}

// gameSection is the report's game server section; its dot is the game
// runs' views.
const gameSection = `<h2>The game server</h2>
<p>Each game run starts game server processes (one owner per room, placed by hashing over the live members, an owner lease with a
fencing epoch in the store) behind the balancer hashing on the room, and players on WebSockets sending sequence-numbered inputs
at a fixed rate. From the acknowledgements and snapshots the players received: <em>inputs lost</em> are acknowledged inputs the room
later did not have; <em>ticks rolled back</em> is how far behind the furthest tick seen a new owner started (total, and the
largest in parentheses); a <em>double activation</em> is two owners acknowledging inputs of one room at once; <em>resume</em> is how long
after the fault the slowest room acknowledged inputs again.</p>
<table><thead><tr><th>strategy</th><th>scenario</th><th>inputs/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th><th>inputs lost</th><th>ticks rolled back</th><th>double activations</th><th>resume</th><th>store ops/input</th><th>replicated B/s</th><th>CPU</th></tr></thead><tbody>
{{range .}}{{if .Skipped}}<tr><td><a href="#{{.Anchor}}">{{.Result.Strategy}}</a></td><td>{{.Result.Scenario}}</td><td colspan="11" style="text-align:left">{{.Skipped}}</td></tr>
{{else}}<tr><td><a href="#{{.Anchor}}">{{.Result.Strategy}}</a></td><td>{{.Result.Scenario}}</td><td>{{printf "%.0f" .Result.AchievedRPS}}</td><td>{{printf "%.1f" .Result.LatencyMS.P50}}</td><td>{{printf "%.1f" .Result.LatencyMS.P99}}</td><td>{{pct .Result.ErrorRate}}</td>
<td{{if .Result.InputsLost}} class="bad"{{end}}>{{.Result.InputsLost}}/{{.Result.InputsAcked}}</td><td>{{.Result.TicksRolledBack}} ({{.Result.TicksRolledBackMax}})</td><td{{if .Result.DoubleActivations}} class="bad"{{end}}>{{.Result.DoubleActivations}}</td><td>{{with .Result.ResumeMS}}{{.}} ms{{else}}-{{end}}</td><td>{{printf "%.2f" .Result.StoreOpsPerInput}}</td><td>{{printf "%.0f" .Result.ReplicatedBytesPerS}}</td><td>{{.CPU}}{{if .Result.CPUSaturated}} <span class="bad">saturated</span>{{end}}</td></tr>
{{end}}{{end}}</tbody></table>
{{range .}}<h3 id="{{.Anchor}}">game: {{.Result.Strategy}} × {{.Result.Scenario}}</h3>
{{if .Skipped}}<p class="note">{{.Skipped}}</p>{{else}}
<div class="nums">{{.Description}}. Store {{.Result.Store}}, {{.Result.Replicas}} replicas, {{.Result.Rooms}} rooms, {{.Result.Players}} players,
{{printf "%.0f" .Result.OfferedRPS}} inputs/s offered for {{.Result.DurationS}} s; tick {{.Result.TickMS}} ms, checkpoint {{.Result.CheckpointMS}} ms, lease {{.Result.LeaseMS}} ms.
{{.Result.Requests}} inputs timed, {{.Result.Errors}} needed another try ({{pct .Result.ErrorRate}}); latency p50 {{.Result.LatencyMS.P50}} / p90 {{.Result.LatencyMS.P90}} / p99 {{.Result.LatencyMS.P99}} / max {{.Result.LatencyMS.Max}} ms;
{{.Result.Activations}} room activations.</div>
{{with .Note}}<p class="note">{{.}}</p>{{end}}
<div class="charts">{{.Throughput}}{{.Errors}}{{.P99}}{{.Share}}</div>
{{end}}{{end}}`
