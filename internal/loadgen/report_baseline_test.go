package loadgen

import (
	"bytes"
	"strings"
	"testing"
)

// The baseline comparison pairs runs as they ran, prints the median ratio and the range
// per cell, and calls a cell regressed only when every run pair agrees.
func TestBaselineReport(t *testing.T) {
	cells := map[cellKey]map[string][]resultJSON{}
	add := func(k cellKey, label string, rates, cpus []float64) {
		if cells[k] == nil {
			cells[k] = map[string][]resultJSON{}
		}
		for i := range rates {
			cells[k][label] = append(cells[k][label], resultJSON{MsgsPerSec: rates[i], ServerCPUNsPerMsg: ptr(cpus[i])})
		}
	}
	same := cellKey{proto: protoEcho, conns: 64, pipeline: 16, size: 64}
	add(same, labelSelf, []float64{100, 110, 90}, []float64{1000, 1000, 1000})
	add(same, labelBaseline, []float64{105, 100, 95}, []float64{990, 1040, 1000}) // noise: pairs span 1.0
	slower := cellKey{proto: protoEcho, conns: 1000, pipeline: 1, size: 64}
	add(slower, labelSelf, []float64{80, 85, 82}, []float64{1300, 1250, 1280})
	add(slower, labelBaseline, []float64{100, 100, 100}, []float64{1000, 1000, 1000}) // every pair worse
	var out bytes.Buffer
	writeBaselineReport(&out, cells, []cellKey{same, slower})
	for _, want := range []string{
		"Against the baseline build",
		"echo c=64 p=16 64 B", "0.95–1.10×",
		"echo c=1000 p=1 64 B", "0.820×", "1.280×",
		"regressed: echo c=1000 p=1 64 B msgs/s 0.82×",
		"regressed: echo c=1000 p=1 64 B CPU/msg 1.28×",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "regressed: echo c=64") {
		t.Errorf("a cell within the spread was called regressed:\n%s", out.String())
	}

	out.Reset()
	delete(cells[same], labelBaseline)
	delete(cells[slower], labelBaseline)
	writeBaselineReport(&out, cells, []cellKey{same, slower})
	if out.Len() != 0 {
		t.Errorf("printed without baseline runs:\n%s", out.String())
	}
}
