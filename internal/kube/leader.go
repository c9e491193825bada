package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LeaderConfig configures leader election through a coordination.k8s.io Lease. The
// zero durations mean client-go's defaults (15s lease, 10s renew deadline, 2s retry).
type LeaderConfig struct {
	Client Leases
	// Namespace and Name locate the Lease; Name defaults to "portpatrol" and Namespace
	// to the pod's namespace (POD_NAMESPACE) or "default".
	Namespace string
	Name      string
	// Identity names this replica in the Lease; empty means the host name (the pod name
	// in a cluster).
	Identity      string
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// OnNewLeader, when set, is told the identity of every leader this replica observes.
	OnNewLeader func(identity string)
	// Logger receives leadership changes; nil discards them.
	Logger *slog.Logger
}

// RunLeader campaigns for the Lease until ctx is done. When this replica becomes leader
// it calls onStart with a context that is cancelled when leadership is lost; onStop is
// called when it stops leading (and only if it had led). A replica that loses the Lease
// campaigns again. On return the Lease is released, so another replica takes over at
// once rather than after the lease duration. Only the leader should alert; every
// replica may serve the dashboard.
func RunLeader(ctx context.Context, cfg LeaderConfig, onStart func(ctx context.Context), onStop func()) error {
	if cfg.Client == nil {
		return errors.New("leader election: no Kubernetes client")
	}
	if cfg.Name == "" {
		cfg.Name = "portpatrol"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = os.Getenv("POD_NAMESPACE")
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "default"
	}
	if cfg.Identity == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("leader election: identity: %w", err)
		}
		cfg.Identity = h
	}
	if cfg.LeaseDuration == 0 {
		cfg.LeaseDuration = 15 * time.Second
	}
	if cfg.RenewDeadline == 0 {
		cfg.RenewDeadline = 10 * time.Second
	}
	if cfg.RetryPeriod == 0 {
		cfg.RetryPeriod = 2 * time.Second
	}
	if cfg.LeaseDuration <= cfg.RenewDeadline {
		return fmt.Errorf("leader election: lease duration %s must exceed the renew deadline %s", cfg.LeaseDuration, cfg.RenewDeadline)
	}
	if cfg.RenewDeadline <= time.Duration(jitter*float64(cfg.RetryPeriod)) {
		return fmt.Errorf("leader election: renew deadline %s must exceed %.1f× the retry period %s", cfg.RenewDeadline, jitter, cfg.RetryPeriod)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &elector{cfg: cfg, log: log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)}
	for ctx.Err() == nil {
		e.run(ctx, onStart, onStop)
		if ctx.Err() == nil {
			// Lost the lease: wait a retry period before campaigning again.
			select {
			case <-ctx.Done():
			case <-time.After(cfg.RetryPeriod):
			}
		}
	}
	return nil
}

// jitter spreads the candidates' retries as client-go's elector does: each waits between
// one and 1+jitter retry periods.
const jitter = 1.2

// elector holds one replica's view of the Lease. It follows client-go's leaderelection
// (which portpatrol cannot link without the whole clientset): a Lease held by another
// replica counts as expired when its record has not changed for a lease duration of
// this replica's clock, so clock skew between replicas does not matter.
type elector struct {
	cfg LeaderConfig
	log *slog.Logger

	observed     coordinationv1.LeaseSpec // the holder's last record as this replica saw it
	observedTime time.Time                // when this replica saw it change
	lease        *coordinationv1.Lease    // the latest Lease read or written
	leader       string                   // the last leader reported to OnNewLeader
}

// run campaigns until this replica leads, then leads until it cannot renew in time or
// ctx is done; then it releases the Lease if it holds it.
func (e *elector) run(ctx context.Context, onStart func(context.Context), onStop func()) {
	for !e.tryAcquireOrRenew(ctx) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait(e.cfg.RetryPeriod)):
		}
	}
	e.log.Info("started leading")
	lctx, cancel := context.WithCancel(ctx)
	started := make(chan struct{})
	go func() {
		defer close(started)
		if onStart != nil {
			onStart(lctx)
		}
	}()
	e.renew(ctx)
	cancel()
	<-started
	e.log.Info("stopped leading")
	if onStop != nil {
		onStop()
	}
	e.release()
}

// renew keeps renewing the Lease every retry period; it returns when ctx is done or a
// renewal has not succeeded within the renew deadline.
func (e *elector) renew(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(e.cfg.RetryPeriod):
		}
		rctx, cancel := context.WithTimeout(ctx, e.cfg.RenewDeadline)
		ok := e.tryAcquireOrRenew(rctx)
		for !ok && rctx.Err() == nil {
			select {
			case <-rctx.Done():
			case <-time.After(e.cfg.RetryPeriod):
				ok = e.tryAcquireOrRenew(rctx)
			}
		}
		cancel()
		if !ok {
			if ctx.Err() == nil {
				e.log.Warn("could not renew the lease in time")
			}
			return
		}
	}
}

func wait(period time.Duration) time.Duration {
	return period + time.Duration(rand.Float64()*(jitter-1)*float64(period))
}

// tryAcquireOrRenew takes the Lease when it is free or expired, or renews it when this
// replica holds it. It reports whether this replica holds it now.
func (e *elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := metav1.NewMicroTime(time.Now())
	dur := int32(e.cfg.LeaseDuration / time.Second)
	mine := coordinationv1.LeaseSpec{
		HolderIdentity:       &e.cfg.Identity,
		LeaseDurationSeconds: &dur,
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	cur, err := e.cfg.Client.GetLease(ctx, e.cfg.Namespace, e.cfg.Name)
	if apierrors.IsNotFound(err) {
		zero := int32(0)
		mine.LeaseTransitions = &zero
		l, err := e.cfg.Client.CreateLease(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Spec:       mine,
		})
		if err != nil {
			e.log.Debug("create lease", "err", err)
			return false
		}
		e.see(l)
		return true
	}
	if err != nil {
		e.log.Debug("get lease", "err", err)
		return false
	}
	e.see(cur)
	holder := deref(cur.Spec.HolderIdentity)
	if holder != "" && holder != e.cfg.Identity &&
		time.Now().Before(e.observedTime.Add(time.Duration(deref(cur.Spec.LeaseDurationSeconds))*time.Second)) {
		return false
	}
	trans := deref(cur.Spec.LeaseTransitions)
	if holder == e.cfg.Identity {
		mine.AcquireTime = cur.Spec.AcquireTime
	} else {
		trans++
	}
	mine.LeaseTransitions = &trans
	upd := cur.DeepCopy()
	upd.Spec = mine
	l, err := e.cfg.Client.UpdateLease(ctx, upd)
	if err != nil {
		// A conflict means another replica wrote first; it is the next read's business.
		e.log.Debug("update lease", "err", err)
		return false
	}
	e.see(l)
	return true
}

// see records the Lease as read or written, and tells OnNewLeader of a new holder.
func (e *elector) see(l *coordinationv1.Lease) {
	e.lease = l
	if !specEqual(e.observed, l.Spec) {
		e.observed = *l.Spec.DeepCopy()
		e.observedTime = time.Now()
	}
	if h := deref(l.Spec.HolderIdentity); h != "" && h != e.leader {
		e.leader = h
		e.log.Debug("leader observed", "leader", h)
		if e.cfg.OnNewLeader != nil {
			e.cfg.OnNewLeader(h)
		}
	}
}

// release hands the Lease back so another replica takes over at once: no holder, and a
// one-second duration for replicas that read it before the holder was cleared.
func (e *elector) release() {
	if e.lease == nil || deref(e.lease.Spec.HolderIdentity) != e.cfg.Identity {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	now := metav1.NewMicroTime(time.Now())
	one := int32(1)
	upd := e.lease.DeepCopy()
	upd.Spec = coordinationv1.LeaseSpec{
		LeaseDurationSeconds: &one,
		AcquireTime:          &now,
		RenewTime:            &now,
		LeaseTransitions:     e.lease.Spec.LeaseTransitions,
	}
	l, err := e.cfg.Client.UpdateLease(ctx, upd)
	if err != nil {
		e.log.Warn("release lease", "err", err)
		return
	}
	e.lease = l
}

func specEqual(a, b coordinationv1.LeaseSpec) bool {
	return deref(a.HolderIdentity) == deref(b.HolderIdentity) &&
		deref(a.LeaseDurationSeconds) == deref(b.LeaseDurationSeconds) &&
		deref(a.LeaseTransitions) == deref(b.LeaseTransitions) &&
		microEqual(a.RenewTime, b.RenewTime) && microEqual(a.AcquireTime, b.AcquireTime)
}

func microEqual(a, b *metav1.MicroTime) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}
