package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrClosed is returned by Publish and Consume after Close.
var ErrClosed = errors.New("cluster: node closed")

// Member is one live member as it announces itself in the members bucket.
type Member struct {
	ID       string    `json:"id"`
	Location string    `json:"location"`
	Role     string    `json:"role"`
	Version  string    `json:"version,omitempty"`
	Capacity int       `json:"capacity,omitempty"`
	Started  time.Time `json:"started"`
}

// Result is one probe result as it travels the stream. Target is the target ID.
type Result struct {
	Member   string          `json:"member"`
	Location string          `json:"location"`
	Epoch    uint64          `json:"epoch"` // the sender's membership view version (see Node.Epoch)
	Target   string          `json:"target"`
	Status   string          `json:"status"` // the scheduler's confirmed status ("up", "down", ...)
	Flapping bool            `json:"flapping,omitempty"`
	Changed  bool            `json:"changed,omitempty"`
	Stored   bool            `json:"stored,omitempty"` // the sender wrote it to history itself
	Result   json.RawMessage `json:"result"`           // the patrol.Result, encoded by the caller
	Seq      uint64          `json:"-"`                // stream sequence, set on delivery
}

// Status is a snapshot of a node's view of the cluster.
type Status struct {
	Self      Member
	Members   []Member // live, sorted by Location then ID
	Leader    string   // member ID of the alerting leader, "" if none
	Token     uint64   // the leader's fencing token
	Epoch     uint64
	Connected bool
	Lag       uint64 // results not yet acknowledged by the alerting consumer; 0 when unknown
	Buffered  int    // results held locally while disconnected
	Dropped   uint64 // results dropped because the buffer was full
	Published uint64
}

// Node is one member of a cluster: it keeps its membership alive, follows the others,
// publishes results and can campaign for the alerting lease. Create it with Join; its
// methods are safe for concurrent use.
type Node struct {
	cfg     Config
	log     *slog.Logger
	self    Member
	nc      *nats.Conn
	js      jetstream.JetStream
	boot    string // distinguishes this process's message IDs from a previous run's
	subject string
	stream  string
	durable string

	ctx    context.Context // ends at Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	leadCtx    context.Context // ends at Close, before the connection closes
	leadCancel context.CancelFunc
	leadWG     sync.WaitGroup

	setup     chan struct{} // (re)connected: create the buckets and stream again
	flushReq  chan struct{}
	leaseGone chan struct{} // the lease key was deleted: campaign now
	changes   chan struct{}
	configCh  chan struct{}
	pending   chan inflight
	watchCh   chan watches

	mu          sync.Mutex
	closed      bool
	ready       bool // buckets, stream and watches exist on the current connection
	membersKV   jetstream.KeyValue
	leaderKV    jetstream.KeyValue
	configKV    jetstream.KeyValue
	members     map[string]seen   // others, by ID
	stale       map[string]uint64 // revision at which a member was dropped for not renewing
	listedCount uint64            // entries in the members bucket at the last listing
	view        []Member          // live members with self, sorted; replaced, never modified
	viewIDs     []uint64          // the ID hashes of view, for ownerOf
	epoch       uint64
	leader      string
	token       uint64
	leading     bool
	config      []byte
	lag         uint64

	bufMu    sync.Mutex
	buf      fifo
	flushing bool

	seq       atomic.Uint64
	dropped   atomic.Uint64
	published atomic.Uint64

	hbMu    sync.Mutex // held while a heartbeat is being written
	leaving bool       // guarded by hbMu: Close has deleted, or is deleting, the key

	// frozen stops heartbeats and lease renewals as a crashed or cut-off member would
	// (tests only).
	frozen atomic.Bool
}

// seen is what a node knows of another member. Times are this node's own monotonic
// clock: no member's clock is compared with another's.
type seen struct {
	m     Member
	at    time.Time // when this node last saw the key
	rev   uint64    // the newest revision of the key seen
	revAt time.Time // when rev was first seen: a member renews every Heartbeat
}

// listEvery is how many heartbeats pass between two listings of the members bucket
// when its count of entries has not moved.
const listEvery = 5

const leaseKey = "alerting"
const configKey = "targets"

// Join validates c, starts connecting to NATS and returns at once, also when NATS is
// unreachable: the connection is retried forever, and the member is announced and the
// buckets and stream created (idempotently) on every connect and reconnect. It returns
// an error only for a bad c; the error names the field ("cluster.ttl: ..."). ctx bounds
// nothing after Join returns; Close ends the node.
func Join(ctx context.Context, c Config) (*Node, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := c.resolve()
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg: c,
		log: c.Logger.With("member", c.Name),
		self: Member{ID: c.Name, Location: c.Location, Role: c.Role, Version: c.Version,
			Capacity: c.Capacity, Started: time.Now().UTC()},
		boot:      randomHex(4),
		subject:   c.Prefix + ".results." + c.Location,
		stream:    strings.ToUpper(c.Prefix) + "_RESULTS",
		durable:   c.Prefix + "_alerting",
		setup:     make(chan struct{}, 1),
		flushReq:  make(chan struct{}, 1),
		leaseGone: make(chan struct{}, 1),
		changes:   make(chan struct{}, 1),
		configCh:  make(chan struct{}, 1),
		pending:   make(chan inflight, maxInflight),
		watchCh:   make(chan watches),
		members:   map[string]seen{},
		stale:     map[string]uint64{},
		buf:       fifo{max: c.Buffer},
	}
	n.view = []Member{n.self}
	n.viewIDs = idHashes(n.view)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.leadCtx, n.leadCancel = context.WithCancel(n.ctx)

	wait := min(c.Heartbeat/2, time.Second)
	nc, err := nats.Connect(c.URL,
		nats.Name("portpatrol "+c.Name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(wait),
		nats.ReconnectJitter(wait/4, wait/4),
		nats.ReconnectBufSize(-1), // results wait in the node's own bounded buffer
		nats.Timeout(2*time.Second),
		nats.PingInterval(max(c.Heartbeat, time.Second)),
		nats.MaxPingsOutstanding(2),
		nats.ConnectHandler(func(*nats.Conn) { n.log.Info("cluster connected"); n.signal(n.setup) }),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			n.log.Info("cluster reconnected", "server", nc.ConnectedUrlRedacted())
			n.signal(n.setup)
		}),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.mu.Lock()
			n.ready = false
			n.mu.Unlock()
			if err != nil {
				n.log.Warn("cluster disconnected; keeping the last member set and buffering results", "err", err)
			}
		}),
	)
	if err != nil {
		n.cancel()
		return nil, fmt.Errorf("cluster.url: %w", err)
	}
	n.nc = nc
	n.js, err = jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(maxInflight),
		jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		n.cancel()
		return nil, fmt.Errorf("cluster: jetstream: %w", err)
	}
	if nc.IsConnected() {
		n.signal(n.setup)
	}
	n.wg.Add(5)
	go n.run()
	go n.follow()
	go n.events()
	go n.acker()
	go n.flusher()
	return n, nil
}

func (n *Node) signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// ID returns the member ID.
func (n *Node) ID() string { return n.self.ID }

// Location returns the member's location.
func (n *Node) Location() string { return n.self.Location }

// Connected reports whether the node is connected to NATS.
func (n *Node) Connected() bool { return n.nc.IsConnected() }

// Members returns the live members of all locations, sorted by Location then ID. Self is
// always among them; while disconnected, the last set seen is kept.
func (n *Node) Members() []Member {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.view)
}

// Epoch returns the version of this node's member view: it increments on every change
// of the live member set this node sees.
func (n *Node) Epoch() uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.epoch
}

// Changes returns a channel that gets a value (coalesced, capacity 1) after each
// membership change.
func (n *Node) Changes() <-chan struct{} { return n.changes }

// Locations returns the locations with at least one live member, sorted.
func (n *Node) Locations() []string {
	n.mu.Lock()
	view := n.view
	n.mu.Unlock()
	var locs []string
	for _, m := range view {
		if len(locs) == 0 || locs[len(locs)-1] != m.Location {
			locs = append(locs, m.Location)
		}
	}
	return locs
}

// Owner returns the ID of the live member of location that owns key (see OwnerOf), or
// "" when location has no live member.
func (n *Node) Owner(location, key string) string {
	n.mu.Lock()
	view, ids := n.view, n.viewIDs
	n.mu.Unlock()
	return ownerOf(view, ids, location, key)
}

// Owns reports whether this member should probe key: its location is among locations
// (an empty list means any) and it owns key within its location.
func (n *Node) Owns(key string, locations []string) bool {
	if len(locations) > 0 && !slices.Contains(locations, n.self.Location) {
		return false
	}
	return n.Owner(n.self.Location, key) == n.self.ID
}

// Leader returns the member ID of the alerting leader and its fencing token, or "" and
// 0 when there is none.
func (n *Node) Leader() (id string, token uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leader, n.token
}

// IsLeader reports whether this node holds the alerting lease.
func (n *Node) IsLeader() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.leading
}

// Config returns the latest configuration document seen in the config bucket, nil if none.
func (n *Node) Config() []byte {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.config)
}

// ConfigChanges returns a channel that gets a value (coalesced, capacity 1) after each
// change of the configuration document.
func (n *Node) ConfigChanges() <-chan struct{} { return n.configCh }

// PutConfig stores doc as the cluster's configuration document (key "targets" in the
// config bucket).
func (n *Node) PutConfig(ctx context.Context, doc []byte) error {
	kv, err := n.bucket(&n.configKV)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, configKey, doc); err != nil {
		return fmt.Errorf("cluster: put config: %w", err)
	}
	return nil
}

func (n *Node) bucket(kv *jetstream.KeyValue) (jetstream.KeyValue, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, ErrClosed
	}
	if *kv == nil {
		return nil, errors.New("cluster: not connected to NATS yet")
	}
	return *kv, nil
}

// Status returns a snapshot of the node's view. Lag is asked of the server (bounded by
// ctx) and is 0 when it cannot be known.
func (n *Node) Status(ctx context.Context) Status {
	n.mu.Lock()
	s := Status{Self: n.self, Members: slices.Clone(n.view), Leader: n.leader, Token: n.token,
		Epoch: n.epoch}
	n.mu.Unlock()
	s.Connected = n.Connected()
	if s.Connected {
		s.Lag, _ = n.streamLag(ctx)
	}
	n.bufMu.Lock()
	s.Buffered = n.buf.len()
	n.bufMu.Unlock()
	s.Dropped = n.dropped.Load()
	s.Published = n.published.Load()
	return s
}

// streamLag returns the results the alerting consumer has not acknowledged.
// StreamLastSeq returns the sequence of the last result in the stream now. A new
// leader judges only the results after it: those before were its predecessor's.
func (n *Node) StreamLastSeq(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, max(n.cfg.Heartbeat, time.Second))
	defer cancel()
	st, err := n.js.Stream(ctx, n.stream)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

func (n *Node) streamLag(ctx context.Context) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Heartbeat)
	defer cancel()
	c, err := n.js.Consumer(ctx, n.stream, n.durable)
	if err != nil {
		return 0, err
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

// Close leaves the cluster: it stops leading (deleting the lease if held), waits a
// moment for results in flight, deletes the member key so that the others rebalance at
// once, tries once more to send buffered results and closes the connection. It is safe
// to call more than once.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	n.mu.Unlock()

	n.leadCancel()
	n.leadWG.Wait()

	// Leave first, so that the others rebalance while the rest shuts down.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	n.hbMu.Lock()
	n.leaving = true
	n.hbMu.Unlock()
	n.mu.Lock()
	kv := n.membersKV
	n.mu.Unlock()
	var err error
	if kv != nil && n.nc.IsConnected() && !n.frozen.Load() {
		if derr := kv.Delete(ctx, n.self.ID); derr != nil {
			err = fmt.Errorf("cluster: leave: %w", derr)
		}
	}
	select {
	case <-n.js.PublishAsyncComplete():
	case <-time.After(2 * time.Second):
	}
	n.cancel()
	n.wg.Wait()
	if n.nc.IsConnected() && !n.frozen.Load() {
		n.flushOnce(ctx)
	}
	if left := n.bufLen(); left > 0 {
		n.log.Warn("cluster closed with results not sent", "results", left)
	}
	n.nc.Close()
	return err
}

// run keeps the member alive: it sets the buckets up after every (re)connect and
// renews the member key every Heartbeat. Nothing else runs in this loop, so that a slow
// listing or a burst of watch events never delays a heartbeat.
func (n *Node) run() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.setup:
			n.prepare()
		case <-tick.C:
			n.mu.Lock()
			ready := n.ready
			n.mu.Unlock()
			if !ready {
				if n.nc.IsConnected() {
					n.prepare()
				}
				continue
			}
			n.heartbeat()
		}
	}
}

// follow keeps the view current: it lists the members every Heartbeat (an expiry by
// MaxAge may leave no marker for a watch), asks for the lag while leading and restarts
// the flush of buffered results.
func (n *Node) follow() {
	defer n.wg.Done()
	tick := time.NewTicker(n.cfg.Heartbeat)
	defer tick.Stop()
	// A member that stopped renewing is looked for four times a heartbeat: the check
	// costs nothing while every member renews.
	fast := time.NewTicker(n.cfg.Heartbeat / 4)
	defer fast.Stop()
	for i := 0; ; {
		select {
		case <-n.ctx.Done():
			return
		case <-fast.C:
			if n.isReady() {
				n.expire()
			}
			continue
		case <-tick.C:
		}
		if !n.isReady() {
			continue
		}
		n.refresh(i%listEvery == 0)
		i++
		if n.bufLen() > 0 {
			n.signal(n.flushReq)
		}
		var lag uint64
		if n.IsLeader() {
			lag, _ = n.streamLag(n.ctx)
		}
		n.mu.Lock()
		n.lag = lag
		n.mu.Unlock()
	}
}

func (n *Node) isReady() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ready
}

// events applies the watches' updates; prepare hands it new watches after a reconnect.
func (n *Node) events() {
	defer n.wg.Done()
	var w watches
	defer w.stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case nw := <-n.watchCh:
			w.stop()
			w = nw
		case e, ok := <-w.members:
			if !ok {
				w.members = nil
				n.notReady()
				continue
			}
			n.memberEvent(e)
		case e, ok := <-w.leader:
			if !ok {
				w.leader = nil
				n.notReady()
				continue
			}
			n.leaderEvent(e)
		case e, ok := <-w.config:
			if !ok {
				w.config = nil
				n.notReady()
				continue
			}
			n.configEvent(e)
		}
	}
}

func (n *Node) notReady() {
	n.mu.Lock()
	n.ready = false
	n.mu.Unlock()
}

type watches struct {
	ws                      []jetstream.KeyWatcher
	members, leader, config <-chan jetstream.KeyValueEntry
}

func (w *watches) stop() {
	for _, x := range w.ws {
		_ = x.Stop()
	}
	*w = watches{}
}

// prepare creates (or updates) the buckets and the stream, announces the member and
// starts the watches. It is idempotent and runs after every (re)connect.
func (n *Node) prepare() {
	if !n.nc.IsConnected() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, 30*time.Second)
	defer cancel()
	w, err := n.create(ctx)
	if err == nil {
		select {
		case n.watchCh <- w:
		case <-n.ctx.Done():
			w.stop()
			return
		}
	}
	if err != nil {
		n.log.Warn("cluster setup failed; retrying at the next heartbeat", "err", err)
		return
	}
	n.mu.Lock()
	n.ready = true
	n.mu.Unlock()
	n.heartbeat()
	n.signal(n.flushReq)
}

func (n *Node) create(ctx context.Context) (w watches, err error) {
	c := n.cfg
	membersKV, err := n.ensureBucket(ctx, jetstream.KeyValueConfig{
		Bucket: c.Prefix + "_members", Description: "portpatrol cluster members (key: member ID)",
		History: 1, TTL: c.TTL, Replicas: c.Replicas, Storage: jetstream.FileStorage})
	if err != nil {
		return w, err
	}
	leaderKV, err := n.ensureBucket(ctx, jetstream.KeyValueConfig{
		Bucket: c.Prefix + "_leader", Description: "portpatrol alerting lease",
		History: 1, TTL: c.TTL, Replicas: c.Replicas, Storage: jetstream.FileStorage})
	if err != nil {
		return w, err
	}
	configKV, err := n.ensureBucket(ctx, jetstream.KeyValueConfig{
		Bucket: c.Prefix + "_config", Description: "portpatrol cluster configuration",
		History: 5, Replicas: c.Replicas, Storage: jetstream.FileStorage})
	if err != nil {
		return w, err
	}
	if err := n.ensureStream(ctx, jetstream.StreamConfig{
		Name: n.stream, Description: "portpatrol probe results",
		Subjects: []string{c.Prefix + ".results.>"}, Replicas: c.Replicas,
		Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
		Discard: jetstream.DiscardOld, MaxAge: 7 * 24 * time.Hour, Duplicates: 2 * time.Minute}); err != nil {
		return w, err
	}
	mw, err := membersKV.WatchAll(n.ctx)
	if err != nil {
		return w, fmt.Errorf("watch %s_members: %w", c.Prefix, err)
	}
	w.ws = append(w.ws, mw)
	lw, err := leaderKV.Watch(n.ctx, leaseKey)
	if err != nil {
		w.stop()
		return w, fmt.Errorf("watch %s_leader: %w", c.Prefix, err)
	}
	w.ws = append(w.ws, lw)
	cw, err := configKV.Watch(n.ctx, configKey)
	if err != nil {
		w.stop()
		return w, fmt.Errorf("watch %s_config: %w", c.Prefix, err)
	}
	w.ws = append(w.ws, cw)
	w.members, w.leader, w.config = mw.Updates(), lw.Updates(), cw.Updates()
	n.mu.Lock()
	n.membersKV, n.leaderKV, n.configKV = membersKV, leaderKV, configKV
	n.mu.Unlock()
	return w, nil
}

// stepTimeout bounds one JetStream API call of the setup. Members that start together
// race to create the same bucket; a call that gets no answer is retried soon.
const stepTimeout = 3 * time.Second

// ensureBucket opens the bucket when it exists with cfg's TTL, history and replicas,
// and creates or updates it otherwise.
func (n *Node) ensureBucket(ctx context.Context, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if kv, err := n.js.KeyValue(sctx, cfg.Bucket); err == nil {
		if st, err := kv.Status(sctx); err == nil {
			have := st.Config()
			if have.TTL == cfg.TTL && have.History == cfg.History && have.Replicas == cfg.Replicas {
				return kv, nil
			}
		}
	}
	kv, err := n.js.CreateOrUpdateKeyValue(sctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// ensureStream leaves the stream alone when it exists with cfg's subjects and
// replicas, and creates or updates it otherwise.
func (n *Node) ensureStream(ctx context.Context, cfg jetstream.StreamConfig) error {
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if st, err := n.js.Stream(sctx, cfg.Name); err == nil {
		have := st.CachedInfo().Config
		if slices.Equal(have.Subjects, cfg.Subjects) && have.Replicas == cfg.Replicas {
			return nil
		}
	}
	if _, err := n.js.CreateOrUpdateStream(sctx, cfg); err != nil {
		return fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return nil
}

// heartbeat re-puts the member key, which keeps it from expiring.
func (n *Node) heartbeat() {
	n.hbMu.Lock()
	defer n.hbMu.Unlock()
	if n.frozen.Load() || n.leaving {
		return
	}
	n.mu.Lock()
	kv := n.membersKV
	n.mu.Unlock()
	data, _ := json.Marshal(n.self)
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Heartbeat)
	defer cancel()
	if _, err := kv.Put(ctx, n.self.ID, data); err != nil {
		n.log.Debug("cluster heartbeat failed", "err", err)
	}
}

// refresh lists the member keys to find members the watch has not shown, and drops
// the members that are gone: deleted, expired, or not renewed for TTL as this node saw
// it (an expiry by the bucket's MaxAge may come late and leave no marker for the watch).
// It also reads the lease, whose expiry is as silent.
func (n *Node) refresh(full bool) {
	n.mu.Lock()
	kv, lkv := n.membersKV, n.leaderKV
	n.mu.Unlock()
	start := time.Now()
	var keys map[string]bool
	listed := false
	// A listing creates a consumer; it is needed only when the bucket's count of
	// entries moved (a join, a delete, an expiry) or, as a safety net, every few beats.
	sctx, scancel := context.WithTimeout(n.ctx, n.cfg.Heartbeat)
	st, err := kv.Status(sctx)
	scancel()
	count := uint64(0)
	if err == nil {
		count = st.Values()
	}
	n.mu.Lock()
	moved := err != nil || count != n.listedCount
	n.mu.Unlock()
	if full || moved {
		keys, listed = n.listMembers(kv)
		if listed && err == nil {
			n.mu.Lock()
			n.listedCount = count
			n.mu.Unlock()
		}
	}
	var check []string
	n.mu.Lock()
	for k := range keys {
		if _, known := n.members[k]; !known && k != n.self.ID {
			check = append(check, k)
		}
	}
	for id, s := range n.members {
		// A listing can miss a key that is being rewritten (history 1 replaces the
		// old entry), so a key missing from it is gone only if a read confirms it.
		if (listed && !keys[id] && s.at.Before(start)) || start.Sub(s.revAt) > n.cfg.TTL {
			check = append(check, id)
		}
	}
	n.mu.Unlock()
	n.check(kv, check, start)
	n.mu.Lock()
	n.rebuild()
	n.mu.Unlock()

	if n.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Heartbeat)
	defer cancel()
	e, err := lkv.Get(ctx, leaseKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		n.mu.Lock()
		if !n.leading {
			n.leader, n.token = "", 0
		}
		n.mu.Unlock()
		n.signal(n.leaseGone)
	} else if err == nil {
		n.leaderEvent(e)
	}
}

// check reads the keys of ids and drops the members whose key is gone, or whose
// revision has not moved for TTL; it adds the unknown ones that are live.
func (n *Node) check(kv jetstream.KeyValue, check []string, start time.Time) {
	for _, id := range check {
		ctx, cancel := context.WithTimeout(n.ctx, n.cfg.Heartbeat)
		e, err := kv.Get(ctx, id)
		cancel()
		now := time.Now()
		n.mu.Lock()
		s, known := n.members[id]
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted):
			if known && s.at.Before(start) {
				n.log.Debug("cluster member gone", "id", id)
				delete(n.members, id)
			}
		case err != nil:
		case !known:
			if m, ok := decodeMember(id, e.Value()); ok && n.stale[id] != e.Revision() {
				delete(n.stale, id)
				n.members[id] = seen{m: m, at: now, rev: e.Revision(), revAt: now}
			}
		case e.Revision() > s.rev:
			s.at, s.rev, s.revAt = now, e.Revision(), now
			n.members[id] = s
		case now.Sub(s.revAt) > n.cfg.TTL:
			n.log.Debug("cluster member not renewed for the TTL", "id", id, "rev", s.rev)
			n.stale[id] = s.rev
			delete(n.members, id)
		}
		n.mu.Unlock()
	}
}

// expire drops, before anything slower runs, the members that have not renewed their
// key for TTL as this node saw it.
func (n *Node) expire() {
	n.mu.Lock()
	kv := n.membersKV
	start := time.Now()
	var ids []string
	for id, s := range n.members {
		if start.Sub(s.revAt) > n.cfg.TTL {
			ids = append(ids, id)
		}
	}
	n.mu.Unlock()
	if len(ids) == 0 || kv == nil {
		return
	}
	n.check(kv, ids, start)
	n.mu.Lock()
	n.rebuild()
	n.mu.Unlock()
}

// listMembers returns the keys of the members bucket and whether the listing is
// complete.
func (n *Node) listMembers(kv jetstream.KeyValue) (map[string]bool, bool) {
	ctx, cancel := context.WithTimeout(n.ctx, 2*n.cfg.Heartbeat)
	defer cancel()
	lister, err := kv.ListKeys(ctx)
	if err != nil {
		return nil, false
	}
	keys := map[string]bool{}
	for k := range lister.Keys() {
		keys[k] = true
	}
	return keys, ctx.Err() == nil
}

func decodeMember(key string, v []byte) (Member, bool) {
	var m Member
	if err := json.Unmarshal(v, &m); err != nil {
		return m, false
	}
	m.ID = key // the key is the identity
	if m.Location == "" {
		m.Location = defaultLocation
	}
	return m, true
}

func (n *Node) memberEvent(e jetstream.KeyValueEntry) {
	if e == nil {
		return // the initial values have been delivered
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	switch e.Operation() {
	case jetstream.KeyValuePut:
		m, ok := decodeMember(e.Key(), e.Value())
		if !ok || m.ID == n.self.ID || n.stale[m.ID] >= e.Revision() {
			break
		}
		delete(n.stale, m.ID)
		now := time.Now()
		s, known := n.members[m.ID]
		if !known || e.Revision() > s.rev {
			s.rev, s.revAt = e.Revision(), now
		}
		s.m, s.at = m, now
		n.members[m.ID] = s
	default:
		delete(n.members, e.Key())
	}
	n.rebuild()
}

// rebuild recomputes the view from the members and self; a changed set bumps the epoch.
// n.mu is held.
func (n *Node) rebuild() {
	view := make([]Member, 0, len(n.members)+1)
	view = append(view, n.self)
	for _, s := range n.members {
		view = append(view, s.m)
	}
	slices.SortFunc(view, func(a, b Member) int {
		if c := strings.Compare(a.Location, b.Location); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if slices.EqualFunc(view, n.view, func(a, b Member) bool {
		return a.ID == b.ID && a.Location == b.Location
	}) {
		n.view = view // roles, versions and capacities may have changed
		return
	}
	n.view, n.viewIDs = view, idHashes(view)
	n.epoch++
	n.signal(n.changes)
}

// lease is the value of the lease key.
type lease struct {
	ID    string `json:"id"`
	Token uint64 `json:"token"`
}

func (n *Node) leaderEvent(e jetstream.KeyValueEntry) {
	if e == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.leading {
		return
	}
	switch e.Operation() {
	case jetstream.KeyValuePut:
		var l lease
		if err := json.Unmarshal(e.Value(), &l); err == nil {
			n.leader, n.token = l.ID, l.Token
		}
	default:
		n.leader, n.token = "", 0
		n.signal(n.leaseGone)
	}
}

func (n *Node) configEvent(e jetstream.KeyValueEntry) {
	if e == nil {
		return
	}
	n.mu.Lock()
	var doc []byte
	if e.Operation() == jetstream.KeyValuePut {
		doc = slices.Clone(e.Value())
	}
	same := string(doc) == string(n.config) && (doc == nil) == (n.config == nil)
	n.config = doc
	n.mu.Unlock()
	if !same {
		n.signal(n.configCh)
	}
}
