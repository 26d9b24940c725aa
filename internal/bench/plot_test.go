package bench_test

import (
	"encoding/xml"
	"strings"
	"testing"

	"github.com/evoke-go/evoke/internal/bench"
)

func TestChartSVG(t *testing.T) {
	t.Parallel()
	for _, bars := range []bool{false, true} {
		svg := bench.Chart{Title: "sagas/s <by> batch", XLabel: "batch", YLabel: "sagas/s", Bars: bars,
			Points: []bench.Point{{"32", 1234.5}, {"64", 12.25}, {"512", 2480}, {"2048", 2399}}}.SVG()
		d := xml.NewDecoder(strings.NewReader(string(svg)))
		for {
			if _, err := d.Token(); err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("bars=%v: not well-formed XML: %v\n%s", bars, err, svg)
				}
				break
			}
		}
		for _, want := range []string{"sagas/s &lt;by&gt; batch", ">2480<", ">1235<", ">2048<", ">12.2<"} {
			if !strings.Contains(string(svg), want) {
				t.Errorf("bars=%v: SVG lacks %q", bars, want)
			}
		}
	}
}
