package intrusion

import (
	"bufio"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"testing"
	"time"
)

var recordNmap = flag.Bool("record-nmap", false, "record testdata/nmap-sT-T4.jsonl from a real nmap scan in network namespaces (root, nmap)")

const nmapRecording = "testdata/nmap-sT-T4.jsonl"

// recorded is one conntrack event as recorded: its offset from the first.
type recorded struct {
	Offset   time.Duration `json:"offset_ns"`
	Type     EventType     `json:"type"`
	Proto    uint8         `json:"proto"`
	Src      netip.Addr    `json:"src"`
	Dst      netip.Addr    `json:"dst"`
	SrcPort  uint16        `json:"sport"`
	DstPort  uint16        `json:"dport"`
	TCPState uint8         `json:"tcp_state"`
	Assured  bool          `json:"assured,omitempty"`
}

func readRecording(t *testing.T, path string) []recorded {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []recorded
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var r recorded
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, r)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRecordedScanReplayedSlowly replays the conntrack events of a real nmap -sT
// -T4 scan of 300 ports (recorded in network namespaces, see -record-nmap), first
// as recorded, then re-timed on the fake clock as a scan with a 10 s delay between
// probes (nmap --scan-delay 10s): each flow keeps its own events and their gaps, the
// flows start 10 s apart, in the recorded order, over 50 minutes. The first is a
// fast scan; the second is found as a slow scan and never as a fast one.
func TestRecordedScanReplayedSlowly(t *testing.T) {
	recs := readRecording(t, nmapRecording)
	type flowKey struct {
		sport, dport uint16
	}
	flowStart := map[flowKey]time.Duration{}
	flowIndex := map[flowKey]int{}
	for _, r := range recs {
		k := flowKey{r.SrcPort, r.DstPort}
		if _, ok := flowIndex[k]; !ok {
			flowIndex[k], flowStart[k] = len(flowIndex), r.Offset
		}
	}
	asRecorded := func(r recorded) time.Duration { return r.Offset }
	delayed := func(r recorded) time.Duration {
		k := flowKey{r.SrcPort, r.DstPort}
		return time.Duration(flowIndex[k])*10*time.Second + r.Offset - flowStart[k]
	}
	for _, tt := range []struct {
		name    string
		at      func(recorded) time.Duration
		want    string
		notWant string
	}{
		{"as recorded", asRecorded, KindFastScan, ""},
		{"a probe every 10 s", delayed, KindSlowScan, KindFastScan},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := NewDetector(Config{})
			var found []Finding
			var last time.Duration
			for i := range recs {
				r := &recs[i]
				e := Event{Type: r.Type, Proto: r.Proto, Src: r.Src, Dst: r.Dst, SrcPort: r.SrcPort, DstPort: r.DstPort, TCPState: r.TCPState, Assured: r.Assured}
				at := tt.at(*r)
				last = max(last, at)
				found = d.Observe(found, t0.Add(at), &e)
			}
			k := kinds(found)
			if k[tt.want] == 0 || (tt.notWant != "" && k[tt.notWant] != 0) {
				t.Fatalf("got %v over %d events of %d flows spanning %s; want %s and no %q", k, len(recs), len(flowIndex), last.Round(time.Second), tt.want, tt.notWant)
			}
			var first Finding
			for _, f := range found {
				if f.Kind == tt.want {
					first = f
					break
				}
			}
			t.Logf("%d events of %d flows spanning %s: %v; %s after %s: %s", len(recs), len(flowIndex), last.Round(time.Millisecond), k,
				tt.want, first.LastSeen.Sub(t0).Round(time.Millisecond), first.Reason)
		})
	}
}
