// Command plot draws a chart of `evoke bench --json` results as SVG.
//
//	go run ./internal/bench/cmd/plot -x inflight -y sagas_per_sec \
//	    -title "..." -o docs/bench-inflight.svg results.jsonl...
//
// It reads one JSON result per line, groups the results by the -x key, takes
// the median of the -y key in each group, draws the medians in x order and
// prints them as a Markdown table (with the medians of a few other keys).
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strconv"

	"github.com/evoke-go/evoke/internal/bench"
)

func main() {
	xKey := flag.String("x", "inflight", "result key on the x axis")
	yKey := flag.String("y", "sagas_per_sec", "result key on the y axis (median per x)")
	title := flag.String("title", "", "chart title")
	xLabel := flag.String("xlabel", "", "x axis label (default: the -x key)")
	yLabel := flag.String("ylabel", "", "y axis label (default: the -y key)")
	bars := flag.Bool("bars", false, "draw bars instead of a line")
	out := flag.String("o", "", "SVG file to write")
	flag.Parse()
	if *out == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: plot -x KEY -y KEY -o FILE.svg RESULTS.jsonl...")
		os.Exit(2)
	}
	groups := map[float64][]map[string]any{}
	for _, name := range flag.Args() {
		f, err := os.Open(name)
		if err != nil {
			fail(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var r map[string]any
			if len(sc.Bytes()) == 0 || sc.Bytes()[0] != '{' {
				continue
			}
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				fail(fmt.Errorf("%s: %w", name, err))
			}
			x, ok := r[*xKey].(float64)
			if !ok {
				fail(fmt.Errorf("%s: a result has no numeric %q", name, *xKey))
			}
			groups[x] = append(groups[x], r)
		}
		f.Close()
	}
	xs := make([]float64, 0, len(groups))
	for x := range groups {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	c := bench.Chart{Title: *title, XLabel: or(*xLabel, *xKey), YLabel: or(*yLabel, *yKey), Bars: *bars}
	cols := []string{*yKey, "events_per_sec", "step_latency_ms.p50", "step_latency_ms.p99", "peak_rss_mb"}
	fmt.Printf("| %s | runs |", *xKey)
	for _, k := range cols[1:] {
		fmt.Printf(" %s |", k)
	}
	fmt.Printf(" %s (median) |\n|---|---|", *yKey)
	for range cols {
		fmt.Print("---|")
	}
	fmt.Println()
	for _, x := range xs {
		rs := groups[x]
		y := median(rs, *yKey)
		c.Points = append(c.Points, bench.Point{X: label(x), Y: y})
		fmt.Printf("| %s | %d |", label(x), len(rs))
		for _, k := range cols[1:] {
			fmt.Printf(" %.1f |", median(rs, k))
		}
		fmt.Printf(" %.0f |\n", y)
	}
	if err := os.WriteFile(*out, c.SVG(), 0o644); err != nil {
		fail(err)
	}
}

// median returns the median of key (a.b for nested objects) over rs.
func median(rs []map[string]any, key string) float64 {
	var vs []float64
	for _, r := range rs {
		if v, ok := lookup(r, key); ok {
			vs = append(vs, v)
		}
	}
	if len(vs) == 0 {
		return 0
	}
	slices.Sort(vs)
	if len(vs)%2 == 1 {
		return vs[len(vs)/2]
	}
	return (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
}

func lookup(r map[string]any, key string) (float64, bool) {
	for i := range key {
		if key[i] == '.' {
			sub, ok := r[key[:i]].(map[string]any)
			if !ok {
				return 0, false
			}
			return lookup(sub, key[i+1:])
		}
	}
	v, ok := r[key].(float64)
	return v, ok
}

// label writes 1000 as 1k and 1000000 as 1M.
func label(x float64) string {
	switch {
	case x >= 1e6 && int64(x)%1e6 == 0:
		return strconv.FormatInt(int64(x)/1e6, 10) + "M"
	case x >= 1e3 && int64(x)%1e3 == 0:
		return strconv.FormatInt(int64(x)/1e3, 10) + "k"
	}
	return strconv.FormatFloat(x, 'f', -1, 64)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "plot:", err)
	os.Exit(1)
}
