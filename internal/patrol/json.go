package patrol

import (
	"encoding/json"
	"time"
)

// resultJSON is the wire form of a Result: durations in seconds, as Prometheus and
// blackbox_exporter report them, and the derived up flag.
type resultJSON struct {
	Target          string             `json:"target"`
	Up              bool               `json:"up"`
	Class           Class              `json:"class"`
	DurationSeconds float64            `json:"duration_seconds"`
	Error           string             `json:"error"`
	Start           time.Time          `json:"start"`
	RemoteAddr      string             `json:"remote_addr,omitempty"`
	Phases          map[string]float64 `json:"phases,omitempty"`
	TLS             *TLSInfo           `json:"tls,omitempty"`
	HTTP            *HTTPInfo          `json:"http,omitempty"`
	Capacity        *Capacity          `json:"capacity,omitempty"`
	Details         map[string]string  `json:"details,omitempty"`
}

// MarshalJSON renders the result with durations in seconds and an "up" field.
func (r Result) MarshalJSON() ([]byte, error) {
	j := resultJSON{
		Target: r.Target, Up: r.Up(), Class: r.Class, DurationSeconds: r.Duration.Seconds(),
		Error: r.Error, Start: r.Start, RemoteAddr: r.RemoteAddr,
		TLS: r.TLS, HTTP: r.HTTP, Capacity: r.Capacity, Details: r.Details,
	}
	if len(r.Phases) > 0 {
		j.Phases = make(map[string]float64, len(r.Phases))
		for _, p := range r.Phases {
			j.Phases[p.Name] += p.Duration.Seconds()
		}
	}
	return json.Marshal(j)
}

// UnmarshalJSON is the inverse of MarshalJSON (phase order is not kept).
func (r *Result) UnmarshalJSON(b []byte) error {
	var j resultJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*r = Result{
		Target: j.Target, Class: j.Class, Duration: time.Duration(j.DurationSeconds * float64(time.Second)),
		Error: j.Error, Start: j.Start, RemoteAddr: j.RemoteAddr, TLS: j.TLS, HTTP: j.HTTP,
		Capacity: j.Capacity, Details: j.Details,
	}
	for name, s := range j.Phases {
		r.Phases = append(r.Phases, Phase{Name: name, Duration: time.Duration(s * float64(time.Second))})
	}
	return nil
}
