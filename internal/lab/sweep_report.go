package lab

import (
	"errors"
	"fmt"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/statelab/statelab/internal/strategy"
)

// WriteSweepTable writes the compact sweep table to out: one line per
// strategy and replica count.
func WriteSweepTable(out io.Writer, sw *Sweep) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\treplicas\tcapacity req/s\tmodel req/s\tefficiency\tp50 ms\tp99 ms\timbalance\tlimiter\t")
	for _, p := range sw.Points {
		if p.Skipped != "" {
			fmt.Fprintf(tw, "%s\t%d\t-\t-\t-\t-\t-\t-\t%s\t\n", p.Strategy, p.Replicas, firstWords(p.Skipped, 6))
			continue
		}
		lim := string(p.Limiter)
		if p.CPUSaturated && p.Limiter != LimitCPU {
			lim += " (cpu saturated)"
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%.0f\t%s\t%.1f\t%.1f\t%.2f\t%s\t\n", p.Strategy, p.Replicas, p.CapacityRPS, p.NominalRPS,
			effText(p), p.Latency.P50, p.Latency.P99, p.Imbalance, lim)
	}
	return tw.Flush()
}

// effText is a point's efficiency as a percentage, "-" when unknown.
func effText(p SweepPoint) string {
	if p.Efficiency <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f%%", p.Efficiency*100)
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		return strings.Join(f[:n], " ") + " …"
	}
	return s
}

// WriteSweepOutputs judges the scaling claims on sw and writes
// results.json (to jsonPath, or outDir/results.json when empty) and
// outDir/report.html.
func WriteSweepOutputs(outDir, jsonPath string, info ReportInfo, sw *Sweep) (Outputs, []ClaimResult, error) {
	claims := EvaluateSweepClaims(sw)
	res := Results{Version: 1, Machine: info.Machine, Sweep: sw}
	for _, c := range claims {
		res.Claims = append(res.Claims, c.JSON())
	}
	if jsonPath == "" {
		jsonPath = filepath.Join(outDir, "results.json")
	}
	out := Outputs{Results: jsonPath, Report: filepath.Join(outDir, "report.html")}
	return out, claims, errors.Join(res.WriteJSON(jsonPath), writeSweepReport(out.Report, info, sw, claims))
}

// strategyColors gives each strategy's line its own color, in the order of
// the strategy table.
var strategyColors = []string{"#dc2626", "#d97706", "#7c3aed", "#2563eb", "#0d9488", "#16a34a", "#db2777", "#4b5563"}

// strategyColor is the color of st's line: its row in the strategy table
// picks it, so a strategy has the same color in every report.
func strategyColor(st string) string {
	for i, s := range strategy.All() {
		if string(s) == st {
			return strategyColors[i%len(strategyColors)]
		}
	}
	return strategyColors[len(strategyColors)-1]
}

// series is one line of a sweep chart.
type series struct {
	name   string
	color  string
	xs, ys []float64
	dashed bool
	marks  []bool // points drawn hollow (cpu saturated)
}

// sweepSeries returns one series per strategy of the points, with y read
// by val, in the order the strategies first appear.
func sweepSeries(points []SweepPoint, val func(SweepPoint) float64) []series {
	var out []series
	idx := map[string]int{}
	for _, p := range points {
		if p.Skipped != "" {
			continue
		}
		i, ok := idx[p.Strategy]
		if !ok {
			i = len(out)
			idx[p.Strategy] = i
			out = append(out, series{name: p.Strategy, color: strategyColor(p.Strategy)})
		}
		out[i].xs = append(out[i].xs, float64(p.Replicas))
		out[i].ys = append(out[i].ys, val(p))
		out[i].marks = append(out[i].marks, p.CPUSaturated)
	}
	return out
}

// curveChart draws series over replica counts on a log2 x axis, with a
// legend; hollow points mark cpu-saturated points.
func curveChart(title, unit string, ss []series, ymax float64) template.HTML {
	const w, h, l, r, t, bt = 560.0, 300.0, 52.0, 120.0, 22.0, 30.0
	xmax, top := 1.0, 0.0
	for _, s := range ss {
		for i := range s.xs {
			xmax, top = math.Max(xmax, s.xs[i]), math.Max(top, s.ys[i])
		}
	}
	if ymax <= 0 {
		ymax = niceCeil(top)
	}
	lx := math.Max(1, math.Log2(xmax))
	px := func(x float64) float64 { return l + math.Log2(math.Max(x, 1))/lx*(w-l-r) }
	py := func(y float64) float64 { return h - bt - math.Min(y, ymax)/ymax*(h-t-bt) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="curve" viewBox="0 0 %.0f %.0f" role="img" aria-label="%s">`, w, h, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<text x="%.0f" y="14" class="t">%s</text>`, l, template.HTMLEscapeString(title))
	for i := 0; i <= 4; i++ {
		y := ymax * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" class="g"/><text x="%.1f" y="%.1f" class="a" text-anchor="end">%s%s</text>`,
			l, w-r, py(y), py(y), l-4, py(y)+3, short(y), unit)
	}
	for x := 1.0; x <= xmax; x *= 2 {
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a" text-anchor="middle">%.0f</text>`, px(x), h-bt+14, x)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="a" text-anchor="middle">replicas</text>`, (l+w-r)/2, h-4)
	for i, s := range ss {
		var pts []string
		for j := range s.xs {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(s.xs[j]), py(s.ys[j])))
		}
		dash := ""
		if s.dashed {
			dash = ` stroke-dasharray:5 4`
		}
		fmt.Fprintf(&b, `<polyline fill="none" style="stroke:%s;stroke-width:1.8;%s" points="%s"/>`, s.color, dash, strings.Join(pts, " "))
		for j := range s.xs {
			fill := s.color
			if j < len(s.marks) && s.marks[j] {
				fill = "#fff"
			}
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" style="fill:%s;stroke:%s"><title>%s, %.0f replicas: %s%s</title></circle>`,
				px(s.xs[j]), py(s.ys[j]), fill, s.color, template.HTMLEscapeString(s.name), s.xs[j], short(s.ys[j]), unit)
		}
		ly := t + 6 + float64(i)*15
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" style="stroke:%s;stroke-width:2;%s"/><text x="%.1f" y="%.1f" class="a">%s</text>`,
			w-r+8, w-r+24, ly, ly, s.color, dash, w-r+28, ly+3, template.HTMLEscapeString(s.name))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// sweepCharts draws capacity against replicas (with the ideal linear line:
// N × the highest efficiency basis of any strategy) and efficiency against
// replicas.
func sweepCharts(sw *Sweep) (capacity, efficiency template.HTML) {
	ss := sweepSeries(sw.Points, func(p SweepPoint) float64 { return p.CapacityRPS })
	var best1 float64
	var xs []float64
	seen := map[float64]bool{}
	for _, p := range sw.Points {
		best1 = math.Max(best1, p.EfficiencyBasisRPS)
		if !seen[float64(p.Replicas)] {
			seen[float64(p.Replicas)] = true
			xs = append(xs, float64(p.Replicas))
		}
	}
	if best1 > 0 {
		ideal := series{name: "ideal linear", color: "#9ca3af", dashed: true}
		for _, x := range xs {
			ideal.xs, ideal.ys = append(ideal.xs, x), append(ideal.ys, x*best1)
		}
		ss = append(ss, ideal)
	}
	capacity = curveChart("capacity: highest sustained requests/s", "", ss, 0)
	es := sweepSeries(sw.Points, func(p SweepPoint) float64 { return p.Efficiency * 100 })
	efficiency = curveChart("efficiency: capacity at N ÷ (N × per-replica basis)", "%", es, 120)
	return capacity, efficiency
}

// writeSweepReport writes the sweep's self-contained HTML report.
func writeSweepReport(path string, info ReportInfo, sw *Sweep, claims []ClaimResult) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	capChart, effChart := sweepCharts(sw)
	data := struct {
		Info          ReportInfo
		Sweep         *Sweep
		Claims        []ClaimResult
		Capacity, Eff template.HTML
	}{info, sw, claims, capChart, effChart}
	if err := sweepTemplate.Execute(f, data); err != nil {
		f.Close()
		return fmt.Errorf("lab: write report: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("lab: write report: %w", err)
	}
	return nil
}

var sweepTemplate = template.Must(template.New("sweep").Funcs(template.FuncMap{
	"pct":     pct,
	"eff":     effText,
	"verdict": func(v Verdict) string { return strings.ReplaceAll(string(v), " ", "-") },
}).Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>statelab scaling sweep</title>
<style>
body{font:15px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1200px;padding:16px 24px;color:#111827;background:#fff}
h1{font-size:26px;margin:8px 0 2px}h2{font-size:20px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
.meta{color:#4b5563;font-size:13px}
table{border-collapse:collapse;font-size:13px;width:100%}th,td{padding:4px 6px;border-bottom:1px solid #e5e7eb;text-align:right}th{background:#f9fafb}td:first-child,th:first-child,td:last-child,th:last-child{text-align:left}
.bad{color:#b91c1c;font-weight:600}
.claim{margin:6px 0;padding:6px 10px;border-left:4px solid #9ca3af;background:#f9fafb}
.claim.holds{border-color:#059669}.claim.holds-with-a-cost{border-color:#d97706}.claim.does-not-hold{border-color:#dc2626}
.v{font-weight:700;text-transform:uppercase;font-size:12px}
.curves{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
.curve{width:100%;height:auto;background:#fcfcfd;border:1px solid #f3f4f6}
.curve .t{font-size:12px;fill:#374151;font-weight:600}.curve .a{font-size:10px;fill:#6b7280}.curve .g{stroke:#e5e7eb}
@media (max-width:800px){.curves{grid-template-columns:1fr}}
</style></head><body>
<h1>statelab scaling sweep</h1>
<div class="meta">{{.Info.Command}} · {{.Info.Generated.Format "2006-01-02 15:04 MST"}} · {{.Info.Machine.CPUs}} CPUs · {{.Info.Machine.Go}}</div>
<p>{{.Sweep.Method}} Each replica: --work {{.Sweep.WorkMS}} ms --max-inflight {{.Sweep.MaxInflight}}; {{.Sweep.ThinkMS}} ms between a shopper's steps; hot-session share {{pct .Sweep.Skew}}; seed {{.Sweep.Seed}}.</p>
<div class="curves">{{.Capacity}}{{.Eff}}</div>
<p class="meta">Hollow points: the machine's CPU was saturated (≥ 90%) at that point's saturating probe — the machine, not the capacity model, may have set the number.</p>

<h2>The claims on scaling</h2>
{{range .Claims}}<div class="claim {{verdict .Verdict}}"><b>{{.N}}. {{.Text}}</b><br><span class="v">{{.Verdict}}</span> — {{.Evidence}}</div>
{{end}}

<h2>Every point</h2>
<table><thead><tr><th>strategy</th><th>replicas</th><th>capacity req/s</th><th>model req/s</th><th>efficiency</th><th>p50 ms</th><th>p99 ms</th><th>p99 bound ms</th><th>errors</th><th>imbalance</th><th>probes</th><th>limiter</th></tr></thead><tbody>
{{range .Sweep.Points}}{{if .Skipped}}<tr><td>{{.Strategy}}</td><td>{{.Replicas}}</td><td colspan="10" style="text-align:left">{{.Skipped}}</td></tr>
{{else}}<tr><td>{{.Strategy}}</td><td>{{.Replicas}}</td><td>{{printf "%.0f" .CapacityRPS}}</td><td>{{printf "%.0f" .NominalRPS}}</td><td>{{eff .}}</td><td>{{printf "%.1f" .Latency.P50}}</td><td>{{printf "%.1f" .Latency.P99}}</td><td>{{printf "%.1f" .P99LimitMS}}</td><td>{{pct .ErrorRate}}</td><td>{{printf "%.2f" .Imbalance}}</td><td>{{len .Probes}}</td>
<td><b{{if .CPUSaturated}} class="bad"{{end}}>{{.Limiter}}{{if .CPUSaturated}} · cpu saturated{{end}}</b> — {{.LimiterEvidence}}</td></tr>
{{end}}{{end}}</tbody></table>
</body></html>
`))
