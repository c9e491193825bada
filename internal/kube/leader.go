package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
)

// LeaderConfig configures leader election through a coordination.k8s.io Lease. The
// zero durations mean client-go's defaults (15s lease, 10s renew deadline, 2s retry).
type LeaderConfig struct {
	Client kubernetes.Interface
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
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Namespace: cfg.Namespace, Name: cfg.Name},
		Client:     cfg.Client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: cfg.Identity},
	}
	for ctx.Err() == nil {
		var led atomic.Bool
		le, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
			Lock:            lock,
			LeaseDuration:   cfg.LeaseDuration,
			RenewDeadline:   cfg.RenewDeadline,
			RetryPeriod:     cfg.RetryPeriod,
			ReleaseOnCancel: true,
			Name:            cfg.Name,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(lctx context.Context) {
					led.Store(true)
					log.Info("started leading")
					if onStart != nil {
						onStart(lctx)
					}
				},
				OnStoppedLeading: func() {
					if !led.Load() {
						return
					}
					log.Info("stopped leading")
					if onStop != nil {
						onStop()
					}
				},
				OnNewLeader: func(id string) {
					log.Debug("leader observed", "leader", id)
					if cfg.OnNewLeader != nil {
						cfg.OnNewLeader(id)
					}
				},
			},
		})
		if err != nil {
			return fmt.Errorf("leader election: %w", err)
		}
		le.Run(ctx)
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
