package intrusion

import (
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Finding kinds.
const (
	KindFastScan   = "fast_scan"
	KindSlowScan   = "slow_scan"
	KindHalfOpen   = "half_open"
	KindBruteForce = "bruteforce"
)

// Finding classes.
const (
	ClassScan       = "scan"
	ClassBruteForce = "bruteforce"
)

// DefaultAuthPorts are the authentication ports whose short connections count as
// brute-force attempts: SSH, SMTP submission and relay, MySQL, RDP, PostgreSQL, Redis.
var DefaultAuthPorts = []uint16{22, 25, 587, 3306, 3389, 5432, 6379}

// Config tunes a Detector. The zero value of every field means its default.
type Config struct {
	// FastWindow and FastScore: a source whose distinct (host, port) new flows within
	// FastWindow weigh FastScore or more is a fast scan; a port below 1024 weighs 3,
	// others 1 (scanlogd's weights). Defaults 3 s and 21; FastScore is at most
	// MaxFastScore.
	FastWindow time.Duration
	FastScore  int
	// SlowWindow and SlowPorts: a source with SlowPorts or more distinct (host, port)
	// flows reset or left unanswered within about SlowWindow is a slow scan. Defaults
	// 1 h and 25.
	SlowWindow time.Duration
	SlowPorts  int
	// HalfOpenWindow and HalfOpen: a source with HalfOpen or more flows that ended
	// without ever being assured (reset, refused or timed out) within HalfOpenWindow
	// is flooding. Defaults 10 s and 100.
	HalfOpenWindow time.Duration
	HalfOpen       int
	// BruteWindow, BruteAttempts and ShortLived: a source with BruteAttempts or more
	// accepted connections to one of AuthPorts that each lasted less than ShortLived,
	// within BruteWindow, is brute-forcing. Defaults 60 s, 40 and 10 s: above the
	// 30 a minute of a load balancer's health check every 2 s (HAProxy's default).
	BruteWindow   time.Duration
	BruteAttempts int
	ShortLived    time.Duration
	// AuthPorts defaults to DefaultAuthPorts.
	AuthPorts []uint16
	// Cooldown is how long a source's finding of one kind is not repeated. Default
	// 10 min.
	Cooldown time.Duration
	// IdleTimeout forgets a source after this long without events; default SlowWindow.
	IdleTimeout time.Duration
	// MaxSources caps the sources tracked at once; when full, an arbitrary one is
	// forgotten. Default 100,000 (under 100 MB).
	MaxSources int
	// Allowlist sources are never tracked.
	Allowlist *Allowlist
}

// MaxFastScore is the highest FastScore: the fast window remembers this many flows.
const MaxFastScore = ringSize

// Validate reports a setting out of range.
func (c Config) Validate() error {
	switch {
	case c.FastScore < 0 || c.FastScore > MaxFastScore:
		return fmt.Errorf("fast score %d: must be between 1 and %d", c.FastScore, MaxFastScore)
	case c.FastWindow < 0, c.SlowWindow < 0, c.HalfOpenWindow < 0, c.BruteWindow < 0,
		c.ShortLived < 0, c.Cooldown < 0, c.IdleTimeout < 0:
		return fmt.Errorf("windows and durations must not be negative")
	case c.SlowPorts < 0 || c.HalfOpen < 0 || c.BruteAttempts < 0 || c.MaxSources < 0:
		return fmt.Errorf("thresholds must not be negative")
	case c.SlowPorts > 1000:
		return fmt.Errorf("slow ports %d: must be at most 1000", c.SlowPorts)
	}
	return nil
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	defi := func(i *int, v int) {
		if *i == 0 {
			*i = v
		}
	}
	def(&c.FastWindow, 3*time.Second)
	defi(&c.FastScore, 21)
	def(&c.SlowWindow, time.Hour)
	defi(&c.SlowPorts, 25)
	def(&c.HalfOpenWindow, 10*time.Second)
	defi(&c.HalfOpen, 100)
	def(&c.BruteWindow, time.Minute)
	defi(&c.BruteAttempts, 40)
	def(&c.ShortLived, 10*time.Second)
	def(&c.Cooldown, 10*time.Minute)
	def(&c.IdleTimeout, c.SlowWindow)
	defi(&c.MaxSources, 100_000)
	if c.AuthPorts == nil {
		c.AuthPorts = DefaultAuthPorts
	}
	return c
}

const (
	ringSize    = 24  // fast-window flows remembered per source
	slowBuckets = 4   // the slow window in quarters
	slowBits    = 256 // bits per quarter (linear counting)
	authSlots   = 7   // open connections to auth ports followed per source (keeps a source in the 896-byte size class)
	sampleSlots = 3   // sample flows kept as evidence
)

type fastEntry struct {
	t    int64
	host uint32
	port uint16
	w    uint8
	prot uint8
}

type authFlow struct {
	start        int64
	sport, dport uint16
}

// window2 counts events over a sliding window from two fixed buckets.
type window2 struct {
	start     int64
	cur, prev uint32
}

func (w *window2) roll(t, width int64) {
	if t < w.start+width {
		return
	}
	k := (t - w.start) / width
	if k == 1 {
		w.prev = w.cur
	} else {
		w.prev = 0
	}
	w.cur = 0
	w.start += k * width
}

func (w *window2) add(t, width int64) int {
	w.roll(t, width)
	w.cur++
	return w.count(t, width)
}

func (w *window2) count(t, width int64) int {
	frac := float64(t-w.start) / float64(width)
	if frac > 1 {
		frac = 1
	}
	return int(float64(w.prev)*(1-frac)+0.5) + int(w.cur)
}

// bruteWin counts short connections to one authentication port.
type bruteWin struct {
	w    window2
	port uint16
}

// bruteAdd counts a short connection to port and returns the port's count in the
// window. Two ports are followed at once: a third takes the place of the one with
// the lower count.
func (s *source) bruteAdd(port uint16, t, width int64) int {
	slot := -1
	for i := range s.brute {
		if s.brute[i].port == port && s.brute[i].w.start != 0 {
			slot = i
		}
	}
	if slot < 0 {
		slot = 0
		if s.brute[1].w.start == 0 || s.brute[1].w.count(t, width) < s.brute[0].w.count(t, width) {
			slot = 1
		}
		s.brute[slot] = bruteWin{w: window2{start: t}, port: port}
	}
	return s.brute[slot].w.add(t, width)
}

type sample struct {
	dst   netip.Addr
	t     int64
	port  uint16
	prot  uint8
	state uint8
}

// source is what is kept of one source address: under a kilobyte.
type source struct {
	ring      [ringSize]fastEntry
	slow      [slowBuckets][slowBits / 64]uint64
	auth      [authSlots]authFlow
	samples   [sampleSlots]sample
	reported  [4]int64 // last report per kind
	slowEpoch int64
	first     int64
	last      int64
	halfWin   window2
	brute     [2]bruteWin // the two busiest authentication ports
	news      uint32
	refused   uint32
	halfOpen  uint32
	attempts  uint32
	head      uint8
	sampleAt  uint8
}

// Detector turns flow events into findings. It is not safe for concurrent use: one
// goroutine feeds it (the Source does).
type Detector struct {
	cfg       Config
	authPorts [65536 / 64]uint64
	sources   map[netip.Addr]*source
	evicted   uint64
}

// NewDetector returns a detector with cfg's defaults filled in.
func NewDetector(cfg Config) *Detector {
	cfg = cfg.withDefaults()
	d := &Detector{cfg: cfg, sources: make(map[netip.Addr]*source)}
	for _, p := range cfg.AuthPorts {
		d.authPorts[p/64] |= 1 << (p % 64)
	}
	return d
}

// Reconfigure applies cfg (defaults filled in; check it with Validate first) from
// the next event on. The sources tracked keep what the detector knows of them;
// those cfg's allowlist now protects are forgotten and returned, with the kinds they
// were reported for, as Sweep returns idle ones.
func (d *Detector) Reconfigure(cfg Config) []Ended {
	cfg = cfg.withDefaults()
	d.cfg = cfg
	d.authPorts = [65536 / 64]uint64{}
	for _, p := range cfg.AuthPorts {
		d.authPorts[p/64] |= 1 << (p % 64)
	}
	var out []Ended
	for k, s := range d.sources {
		if _, ok := cfg.Allowlist.Match(k); !ok {
			continue
		}
		delete(d.sources, k)
		if e, ok := ended(k, s); ok {
			out = append(out, e)
		}
	}
	return out
}

// Config returns the detector's configuration, defaults filled in.
func (d *Detector) Config() Config { return d.cfg }

// Sources returns how many sources are tracked.
func (d *Detector) Sources() int { return len(d.sources) }

// Evicted returns how many sources were forgotten because the table was full.
func (d *Detector) Evicted() uint64 { return d.evicted }

func (d *Detector) isAuth(p uint16) bool { return d.authPorts[p/64]&(1<<(p%64)) != 0 }

func hostKey(a netip.Addr) uint32 {
	if a.Is4() {
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	b := a.As16()
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	return h
}

// Observe feeds one event seen at the given time and appends any findings to dst.
// Call Sweep about once a minute to forget idle sources.
func (d *Detector) Observe(dst []Finding, at time.Time, e *Event) []Finding {
	t := at.UnixNano()
	if !e.Src.IsValid() {
		return dst
	}
	if _, ok := d.cfg.Allowlist.Match(e.Src); ok {
		return dst
	}
	src := e.Src.Unmap()
	s := d.sources[src]
	if s == nil {
		if e.Type != EventNew {
			return dst // a flow from before the detector started
		}
		if len(d.sources) >= d.cfg.MaxSources {
			for k := range d.sources {
				delete(d.sources, k)
				d.evicted++
				break
			}
		}
		s = &source{first: t}
		s.halfWin.start = t
		d.sources[src] = s
	}
	s.last = t
	switch e.Type {
	case EventNew:
		s.news++
		dst = d.onNew(dst, src, s, t, e)
	case EventUpdate, EventDestroy:
		dst = d.onChange(dst, src, s, t, e)
	}
	return dst
}

func (d *Detector) onNew(dst []Finding, src netip.Addr, s *source, t int64, e *Event) []Finding {
	if e.Proto == ProtoTCP && d.isAuth(e.DstPort) {
		oldest := 0
		for i := range s.auth {
			if s.auth[i].start == 0 {
				oldest = i
				break
			}
			if s.auth[i].start < s.auth[oldest].start {
				oldest = i
			}
		}
		start := t
		if !e.Start.IsZero() {
			start = e.Start.UnixNano()
		}
		s.auth[oldest] = authFlow{start: start, sport: e.SrcPort, dport: e.DstPort}
	}
	host := hostKey(e.Dst)
	from := t - int64(d.cfg.FastWindow)
	score := 0
	for i := range s.ring {
		r := &s.ring[i]
		if r.t <= from || r.t == 0 {
			continue
		}
		if r.host == host && r.port == e.DstPort && r.prot == e.Proto {
			return dst // the same door again: not a new one
		}
		score += int(r.w)
	}
	w := uint8(1)
	if e.DstPort < 1024 {
		w = 3
	}
	s.ring[s.head] = fastEntry{t: t, host: host, port: e.DstPort, w: w, prot: e.Proto}
	s.head = (s.head + 1) % ringSize
	s.addSample(e, t)
	score += int(w)
	if score >= d.cfg.FastScore && d.due(s, 0, t) {
		f := d.finding(src, s, t, ClassScan, KindFastScan)
		f.Score, f.Threshold = score, d.cfg.FastScore
		f.Reason = fmt.Sprintf("%d distinct ports on %d hosts within %s weigh %d (threshold %d; a port below 1024 weighs 3)",
			f.DistinctPorts, f.DistinctHosts, d.cfg.FastWindow, score, d.cfg.FastScore)
		dst = append(dst, f)
	}
	return dst
}

func (s *source) addSample(e *Event, t int64) {
	s.samples[s.sampleAt] = sample{dst: e.Dst, t: t, port: e.DstPort, prot: e.Proto, state: e.TCPState}
	s.sampleAt = (s.sampleAt + 1) % sampleSlots
}

func (d *Detector) onChange(dst []Finding, src netip.Addr, s *source, t int64, e *Event) []Finding {
	closing := e.Type == EventDestroy || (e.Proto == ProtoTCP && e.TCPState >= TCPFinWait && e.TCPState <= TCPClose)
	if !closing {
		return dst
	}
	if e.Proto == ProtoTCP && d.isAuth(e.DstPort) {
		for i := range s.auth {
			a := &s.auth[i]
			if a.start == 0 || a.sport != e.SrcPort || a.dport != e.DstPort {
				continue
			}
			short := t-a.start < int64(d.cfg.ShortLived)
			*a = authFlow{}
			if short && e.Assured {
				s.attempts++
				s.addSample(e, t)
				n := s.bruteAdd(e.DstPort, t, int64(d.cfg.BruteWindow))
				if n >= d.cfg.BruteAttempts && d.due(s, 3, t) {
					f := d.finding(src, s, t, ClassBruteForce, KindBruteForce)
					f.Score, f.Threshold = n, d.cfg.BruteAttempts
					f.Reason = fmt.Sprintf("%d accepted connections to authentication port %d shorter than %s within %s (threshold %d)",
						n, e.DstPort, d.cfg.ShortLived, d.cfg.BruteWindow, d.cfg.BruteAttempts)
					dst = append(dst, f)
				}
			}
			break
		}
	}
	if e.Assured {
		return dst
	}
	// A flow that ended without ever being assured, counted once, when conntrack
	// destroys it (every flow is destroyed exactly once; a reset flow may or may not
	// be reported in state CLOSE before, depending on the kernel): reset or refused
	// when destroyed in CLOSE, left unanswered (timed out) in SYN_SENT or SYN_RECV,
	// or any unanswered flow of another protocol.
	if e.Type != EventDestroy {
		return dst
	}
	switch {
	case e.Proto == ProtoTCP && e.TCPState == TCPClose:
		s.refused++
	case e.Proto == ProtoTCP && e.TCPState >= TCPEstablished:
		return dst
	default:
		s.halfOpen++
	}
	s.addSample(e, t)
	n := s.halfWin.add(t, int64(d.cfg.HalfOpenWindow))
	if n >= d.cfg.HalfOpen && d.due(s, 2, t) {
		f := d.finding(src, s, t, ClassScan, KindHalfOpen)
		f.Score, f.Threshold = n, d.cfg.HalfOpen
		f.Reason = fmt.Sprintf("%d flows ended never assured (reset, refused or unanswered) within %s (threshold %d)",
			n, d.cfg.HalfOpenWindow, d.cfg.HalfOpen)
		dst = append(dst, f)
	}
	if d.addSlow(s, t, hostKey(e.Dst), e.DstPort, e.Proto) {
		n := slowCount(s)
		if n >= d.cfg.SlowPorts && d.due(s, 1, t) {
			f := d.finding(src, s, t, ClassScan, KindSlowScan)
			f.Score, f.Threshold = n, d.cfg.SlowPorts
			f.Reason = fmt.Sprintf("about %d distinct ports reset or unanswered within %s (threshold %d)",
				n, d.cfg.SlowWindow, d.cfg.SlowPorts)
			dst = append(dst, f)
		}
	}
	return dst
}

// addSlow marks (host, port) in the current quarter of the slow window and reports
// whether it was new to the whole window.
func (d *Detector) addSlow(s *source, t int64, host uint32, port uint16, prot uint8) bool {
	width := int64(d.cfg.SlowWindow) / slowBuckets
	epoch := t / width
	if epoch != s.slowEpoch {
		gap := epoch - s.slowEpoch
		if gap < 0 || gap >= slowBuckets {
			s.slow = [slowBuckets][slowBits / 64]uint64{}
		} else {
			for e := s.slowEpoch + 1; e <= epoch; e++ {
				s.slow[e%slowBuckets] = [slowBits / 64]uint64{}
			}
		}
		s.slowEpoch = epoch
	}
	h := (host*2654435761 ^ uint32(port)*40503 ^ uint32(prot)) * 2246822519
	bit := h >> 24 // 0..255
	word, mask := bit/64, uint64(1)<<(bit%64)
	seen := false
	for i := range s.slow {
		if s.slow[i][word]&mask != 0 {
			seen = true
		}
	}
	s.slow[epoch%slowBuckets][word] |= mask
	return !seen
}

// slowCount estimates the distinct (host, port) pairs in the slow window by linear
// counting over the union of its quarters.
func slowCount(s *source) int {
	ones := 0
	for w := 0; w < slowBits/64; w++ {
		var u uint64
		for i := range s.slow {
			u |= s.slow[i][w]
		}
		ones += bits.OnesCount64(u)
	}
	zeros := slowBits - ones
	if zeros == 0 {
		zeros = 1
	}
	return int(math.Round(-slowBits * math.Log(float64(zeros)/slowBits)))
}

func (d *Detector) due(s *source, kind int, t int64) bool {
	if s.reported[kind] != 0 && t-s.reported[kind] < int64(d.cfg.Cooldown) {
		return false
	}
	s.reported[kind] = t
	return true
}

func (d *Detector) finding(src netip.Addr, s *source, t int64, class, kind string) Finding {
	f := Finding{Class: class, Kind: kind, Source: src,
		FirstSeen: time.Unix(0, s.first), LastSeen: time.Unix(0, t),
		Refused: int(s.refused), HalfOpen: int(s.halfOpen), Attempts: int(s.attempts)}
	hosts := map[uint32]bool{}
	for _, r := range s.ring {
		if r.t == 0 {
			continue
		}
		hosts[r.host] = true
		if !slices.Contains(f.Ports, r.port) {
			f.Ports = append(f.Ports, r.port)
		}
	}
	slices.Sort(f.Ports)
	f.DistinctPorts, f.DistinctHosts = len(f.Ports), len(hosts)
	if n := slowCount(s); n > f.DistinctPorts {
		f.DistinctPorts = n
	}
	if span := time.Duration(t - s.first); span > time.Second {
		f.Rate = float64(s.news) / span.Seconds()
	} else {
		f.Rate = float64(s.news)
	}
	for _, sm := range s.samples {
		if sm.t == 0 {
			continue
		}
		st := ""
		if sm.prot == ProtoTCP {
			st = TCPStateName(sm.state)
		}
		f.Samples = append(f.Samples, Sample{Dst: netip.AddrPortFrom(sm.dst, sm.port), Proto: protoName(sm.prot), State: st, At: time.Unix(0, sm.t)})
	}
	slices.SortFunc(f.Samples, func(a, b Sample) int { return a.At.Compare(b.At) })
	return f
}

// Sweep forgets sources idle for longer than IdleTimeout and returns them with the
// kinds they were reported for, so that their findings can be resolved.
func (d *Detector) Sweep(at time.Time) []Ended {
	t := at.UnixNano()
	var out []Ended
	for k, s := range d.sources {
		if t-s.last < int64(d.cfg.IdleTimeout) {
			continue
		}
		delete(d.sources, k)
		if e, ok := ended(k, s); ok {
			out = append(out, e)
		}
	}
	return out
}

// ended is a forgotten source with the kinds it was reported for; false when it
// never was.
func ended(k netip.Addr, s *source) (Ended, bool) {
	var kinds []string
	for i, name := range []string{KindFastScan, KindSlowScan, KindHalfOpen, KindBruteForce} {
		if s.reported[i] != 0 {
			kinds = append(kinds, name)
		}
	}
	return Ended{Source: k, Kinds: kinds}, kinds != nil
}

// Ended is a forgotten source that had findings.
type Ended struct {
	Source netip.Addr
	Kinds  []string
}

// Summary is one line about f for logs and alert summaries.
func (f Finding) Summary() string {
	var b strings.Builder
	switch f.Class {
	case ClassBruteForce:
		fmt.Fprintf(&b, "brute force from %s", f.Source)
	default:
		fmt.Fprintf(&b, "%s from %s", strings.ReplaceAll(f.Kind, "_", " "), f.Source)
	}
	fmt.Fprintf(&b, ": %s", f.Reason)
	return b.String()
}
