package lab

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ReportInfo is what the report says about how it was made.
type ReportInfo struct {
	// Command is the command line that produced the runs.
	Command string
	// Generated is when the report was written.
	Generated time.Time
	// Machine describes the machine.
	Machine Machine
	// Wall is how long all the runs took.
	Wall time.Duration
	// Params describes the run parameters shared by every run.
	Params string
}

// WriteReport writes a self-contained HTML report (inline CSS, charts as
// SVG drawn here, no script, nothing fetched) of runs and claims to path.
func WriteReport(path string, info ReportInfo, runs []*Run, claims []ClaimResult) error {
	return writeReport(path, info, runs, claims, nil)
}

// writeReport is WriteReport with a scaling sweep's charts and table (sw
// nil: none).
func writeReport(path string, info ReportInfo, runs []*Run, claims []ClaimResult, sw *Sweep) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	data := reportData{Info: info, Claims: claims, Raw: runs, Sweep: sw}
	if sw != nil {
		data.SweepCapacity, data.SweepEff = sweepCharts(sw)
	}
	cart, games := splitGameRuns(runs)
	for _, r := range cart {
		data.Runs = append(data.Runs, newRunView(r))
	}
	for _, r := range games {
		data.Games = append(data.Games, newGameView(r))
	}
	if err := reportTemplate.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("lab: write report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	return nil
}

type reportData struct {
	Info   ReportInfo
	Claims []ClaimResult
	Runs   []runView
	Raw    []*Run // the runs as given, for the services table
	// Sweep is the scaling sweep, when one ran, with its two charts.
	Sweep                   *Sweep
	SweepCapacity, SweepEff template.HTML
	// Games are the game server's runs, in a section of their own.
	Games []runView
}

type runView struct {
	*Run
	Anchor      string
	Description string
	Throughput  template.HTML
	Errors      template.HTML
	P99         template.HTML
	Share       template.HTML
	Ramp        template.HTML // the joining replicas' share over time (failover, scaleout)
	Lin         string
	Recovery    string
	Failover    string // failover_ms of a clustered Redis's storefail
	CPU         string
	Causes      string // the errors by cause, most frequent first
}

func newRunView(r *Run) runView {
	v := runView{Run: r, Anchor: r.Result.Strategy + "-" + r.Result.Scenario}
	v.Description = Scenario(r.Result.Scenario).Describe()
	if r.Skipped != "" {
		return v
	}
	v.Lin = linText(r.Result.Linearizable)
	v.Causes = causesText(r.Result.ErrorCauses, 6)
	v.Recovery = "-"
	if r.Result.RecoveryMS != nil {
		v.Recovery = fmt.Sprintf("%d ms", *r.Result.RecoveryMS)
	}
	v.Failover = failoverText(r.Result)
	v.CPU = "not sampled"
	if r.CPUBusy >= 0 {
		v.CPU = fmt.Sprintf("%.0f%%", r.CPUBusy*100)
	}
	var xs, thr, errs, p99 []float64
	width := 0.1
	if len(r.Timeline) > 1 {
		width = r.Timeline[1].Start - r.Timeline[0].Start
	}
	for _, b := range r.Timeline {
		xs = append(xs, b.Start+width/2)
		thr = append(thr, float64(b.Requests)/width)
		errs = append(errs, float64(b.Errors)/width)
		p99 = append(p99, b.P99)
	}
	var marks []mark
	for _, f := range r.Faults {
		marks = append(marks, mark{x: float64(f.At) / 1e9, label: f.What})
	}
	xmax := r.Result.DurationS
	v.Throughput = lineChart("requests/s", xs, thr, xmax, marks, "#2563eb")
	v.Errors = lineChart("errors/s", xs, errs, xmax, marks, "#dc2626")
	v.P99 = lineChart("p99 latency, ms", xs, p99, xmax, marks, "#7c3aed")
	v.Share = shareChart(r.Result.ReplicaShare)
	v.Ramp = rampChart(r, marks)
	return v
}

type mark struct {
	x     float64
	label string
}

const (
	chartW, chartH = 300.0, 140.0
	padL, padR     = 40.0, 8.0
	padT, padB     = 18.0, 20.0
)

// lineChart draws ys over xs as an SVG polyline with fault markers.
func lineChart(title string, xs, ys []float64, xmax float64, marks []mark, color string) template.HTML {
	ymax := 0.0
	for _, y := range ys {
		ymax = math.Max(ymax, y)
	}
	ymax = niceCeil(ymax)
	if xmax <= 0 {
		xmax = 1
	}
	px := func(x float64) float64 { return padL + x/xmax*(chartW-padL-padR) }
	py := func(y float64) float64 { return chartH - padB - y/ymax*(chartH-padT-padB) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, chartW, chartH, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="12" class="t">%s</text>`, padL, template.HTMLEscapeString(title))
	// Axes and gridlines.
	for i := 0; i <= 2; i++ {
		y := ymax * float64(i) / 2
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="g"/>`, padL, chartW-padR, py(y), py(y))
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a" text-anchor="end">%s</text>`, padL-3, py(y)+3, short(y))
	}
	for _, x := range []float64{0, xmax / 2, xmax} {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a" text-anchor="middle">%ss</text>`, px(x), chartH-6, short(x))
	}
	for _, m := range marks {
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="m"><title>%s</title></line>`,
			px(m.x), px(m.x), padT, chartH-padB, template.HTMLEscapeString(fmt.Sprintf("%.2fs: %s", m.x, m.label)))
	}
	if len(xs) > 0 {
		var pts []string
		for i := range xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(xs[i]), py(ys[i])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.6" points="%s"/>`, color, strings.Join(pts, " "))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// shareChart draws each replica's share of the requests as bars.
func shareChart(share map[string]float64) template.HTML {
	ids := make([]string, 0, len(share))
	for id := range share {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if len(ids[i]) != len(ids[j]) {
			return len(ids[i]) < len(ids[j])
		}
		return ids[i] < ids[j]
	})
	h := padT + float64(len(ids))*16 + 6
	h = math.Max(h, chartH)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %.0f %.0f" role="img" aria-label="share of requests per replica">`, chartW, h)
	fmt.Fprintf(&b, `<text x="%.0f" y="12" class="t">share of requests per replica</text>`, padL)
	maxW := chartW - padL - padR - 40
	for i, id := range ids {
		y := padT + float64(i)*16
		w := share[id] * maxW
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a" text-anchor="end">%s</text>`, padL-4, y+10, template.HTMLEscapeString(id))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="11" fill="#0d9488"/>`, padL, y+1, w)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a">%.0f%%</text>`, padL+w+4, y+10, share[id]*100)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten (1 for v <= 0).
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func short(v float64) string {
	switch {
	case v >= 1000:
		return fmt.Sprintf("%.0fk", v/1000)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

var reportTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":     pct,
	"verdict": func(v Verdict) string { return strings.ReplaceAll(string(v), " ", "-") },
	"ms":      func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
	"lu":      lostUpdatesText,
	"svcHead": func() []string { return servicesHeader },
	"svcRows": servicesRows,
	"eff":     effText,
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>statelab report</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#111827;background:#fff}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}h3{font-size:16px;margin:18px 0 4px}
.meta{color:#4b5563;font-size:13px}
.curves{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}.curve{width:100%;height:auto;background:#fcfcfd;border:1px solid #f3f4f6}
.curve .t{font-size:12px;fill:#374151;font-weight:600}.curve .a{font-size:10px;fill:#6b7280}.curve .g{stroke:#e5e7eb}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:right;white-space:nowrap}th{background:#f9fafb}td:first-child,td:nth-child(2),th:first-child,th:nth-child(2){text-align:left}
.bad{color:#b91c1c;font-weight:600}.good{color:#047857}
.claim{margin:6px 0;padding:6px 10px;border-left:4px solid #9ca3af;background:#f9fafb}
.claim.holds{border-color:#059669}.claim.holds-with-a-cost{border-color:#d97706}.claim.does-not-hold{border-color:#dc2626}
.v{font-weight:700;text-transform:uppercase;font-size:12px;letter-spacing:.03em}
.holds .v{color:#047857}.holds-with-a-cost .v{color:#b45309}.does-not-hold .v{color:#b91c1c}.not-measured .v{color:#6b7280}
.charts{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:8px}
.chart{width:100%;height:auto;background:#fcfcfd;border:1px solid #f3f4f6}
.chart .t{font-size:11px;fill:#374151;font-weight:600}.chart .a{font-size:9px;fill:#6b7280}.chart .g{stroke:#e5e7eb}.chart .m{stroke:#f59e0b;stroke-width:1.5;stroke-dasharray:3 2}
.nums{font-size:13px;color:#374151}.note{color:#92400e;font-size:13px}
@media (max-width:800px){.charts{grid-template-columns:repeat(2,minmax(0,1fr))}}
</style></head><body>
<h1>statelab report</h1>
<div class="meta">{{.Info.Command}} · {{.Info.Generated.Format "2006-01-02 15:04 MST"}} · {{.Info.Machine.CPUs}} CPUs · {{.Info.Machine.Go}} · all runs took {{ms .Info.Wall}}</div>
<p>Each run starts a real cluster — a load balancer, replica processes and the strategy's store — and sends shoppers through it
at a fixed arrival rate while the scenario's faults happen. Every cart is then read back and checked: an <em>item lost</em> is an
add the server acknowledged that is missing from the cart at the end; a <em>stale read</em> is a read that missed an item already
acknowledged; a <em>lost update</em> is an acknowledged quantity increment that vanished when several tabs updated one cart.
Latency is measured from when each request was <em>scheduled</em>, so a stalled server cannot hide its queue. {{.Info.Params}}</p>

<h2>The claims</h2>
{{range .Claims}}<div class="claim {{verdict .Verdict}}"><b>{{.N}}. {{.Text}}</b><br><span class="v">{{.Verdict}}</span> — {{.Evidence}}</div>
{{end}}

<h2>All runs</h2>
<table><thead><tr><th>strategy</th><th>scenario</th><th>req/s</th><th>p50 ms</th><th>p99 ms</th><th>errors</th><th>carts lost</th><th>items lost</th><th>stale reads</th><th>lost updates</th><th>linearizable</th><th>imbalance</th><th>recovery</th><th>store failover</th><th>CPU</th></tr></thead><tbody>
{{range .Runs}}{{if .Skipped}}<tr><td><a href="#{{.Anchor}}">{{.Result.Strategy}}</a></td><td>{{.Result.Scenario}}</td><td colspan="13" style="text-align:left">{{.Skipped}}</td></tr>
{{else}}<tr><td><a href="#{{.Anchor}}">{{.Result.Strategy}}</a></td><td>{{.Result.Scenario}}</td><td>{{printf "%.0f" .Result.AchievedRPS}}</td><td>{{printf "%.1f" .Result.LatencyMS.P50}}</td><td>{{printf "%.1f" .Result.LatencyMS.P99}}</td><td>{{pct .Result.ErrorRate}}</td>
<td{{if .Result.CartsLost}} class="bad"{{end}}>{{.Result.CartsLost}}/{{.Result.Carts}}</td><td{{if .Result.ItemsLost}} class="bad"{{end}}>{{.Result.ItemsLost}}/{{.Result.ItemsAcked}}</td><td{{if .Result.StaleReads}} class="bad"{{end}}>{{.Result.StaleReads}}</td><td{{if .Result.LostUpdates}} class="bad"{{end}}>{{lu .Result}}</td><td>{{.Lin}}</td><td>{{printf "%.2f" .Result.Imbalance}}</td><td>{{.Recovery}}</td><td>{{.Failover}}</td><td>{{.CPU}}{{if .Result.CPUSaturated}} <span class="bad">saturated</span>{{end}}</td></tr>
{{end}}{{end}}</tbody></table>
<p class="meta">imbalance: the busiest replica's requests over the mean, after the last fault (1.00 is perfectly even). recovery: from the first fault until the error rate is back within one point of its pre-fault level. store failover (storefail on a Redis Cluster or Sentinel set): from killing a Redis master until the cluster or the sentinels promoted its replica; "none" when none was promoted. CPU: the machine's mean CPU use during the run; "saturated" (≥ 90%) means the machine, not the replicas' capacity model, limited the run.</p>

{{with svcRows .Raw}}<h2>The services</h2>
<p class="meta">surge: quotes jump ×4 and only pricing is scaled 1→4 (services), or the carts (monolith); quotes and cart calls from the surge on. deploy: every pricing replica deployed again in turn; the whole run. quote capacity: a closed-loop probe before and after. linearity: the capacity each added replica brought over the first replicas' per replica. pool imbalance: the busiest replica's share of the second probe over the mean. replay: recorded requests sent again to a fresh replica that answered identically.</p>
<table><thead><tr>{{range svcHead}}<th>{{.}}</th>{{end}}</tr></thead><tbody>
{{range .}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</tbody></table>{{end}}

{{with .Sweep}}<h2>Scaling sweep</h2>
<p class="meta">{{.Method}} Each replica: --work {{.WorkMS}} ms --max-inflight {{.MaxInflight}}. Hollow points: the machine's CPU was saturated at that point's saturating probe.</p>
<div class="curves">{{$.SweepCapacity}}{{$.SweepEff}}</div>
<table><thead><tr><th>strategy</th><th>replicas</th><th>capacity req/s</th><th>model req/s</th><th>efficiency</th><th>p99 ms</th><th>errors</th><th>limiter</th></tr></thead><tbody>
{{range .Points}}{{if .Skipped}}<tr><td>{{.Strategy}}</td><td>{{.Replicas}}</td><td colspan="6" style="text-align:left">{{.Skipped}}</td></tr>
{{else}}<tr><td>{{.Strategy}}</td><td>{{.Replicas}}</td><td>{{printf "%.0f" .CapacityRPS}}</td><td>{{printf "%.0f" .NominalRPS}}</td><td>{{eff .}}</td><td>{{printf "%.1f" .Latency.P99}}</td><td>{{pct .ErrorRate}}</td><td>{{.Limiter}}{{if .CPUSaturated}} · cpu saturated{{end}} — {{.LimiterEvidence}}</td></tr>
{{end}}{{end}}</tbody></table>{{end}}

<h2>Runs over time</h2>
<p class="meta">Dashed orange lines mark the faults (hover for what happened).</p>
{{range .Runs}}<h3 id="{{.Anchor}}">{{.Result.Strategy}} × {{.Result.Scenario}}</h3>
{{if .Skipped}}<p class="note">{{.Skipped}}</p>{{else}}
<div class="nums">{{.Description}}. Store {{.Result.Store}}, policy {{.Result.Policy}}, {{.Result.Replicas}} replicas, {{printf "%.0f" .Result.OfferedRPS}} req/s offered for {{.Result.DurationS}} s.
{{.Result.Requests}} requests, {{.Result.Errors}} errors ({{pct .Result.ErrorRate}}{{with .Causes}}; by cause: {{.}}{{end}}), {{.Unknown}} cart operations with an unknown outcome; latency p50 {{.Result.LatencyMS.P50}} / p90 {{.Result.LatencyMS.P90}} / p99 {{.Result.LatencyMS.P99}} / max {{.Result.LatencyMS.Max}} ms.
{{.Result.Carts}} carts: {{.Result.CartsLost}} lost something, {{.CartsUnchecked}} could not be read back; linearizability {{.Lin}} ({{.NonLinearizable}} of {{.LinChecked}} carts not linearizable){{if .LinViz}} — <a href="{{.LinViz}}">see a failing cart's history</a>{{end}}.</div>
{{with .Note}}<p class="note">{{.}}</p>{{end}}
<div class="charts">{{.Throughput}}{{.Errors}}{{.P99}}{{.Share}}{{.Ramp}}</div>
{{end}}{{end}}
{{with .Games}}` + gameSection + `{{end}}
</body></html>
`))
