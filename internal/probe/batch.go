package probe

import (
	"context"
	"sync"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// RunOnce probes each target once, at most limit at a time (1 when limit < 1), each
// with the given timeout, and returns the results by target ID. module resolves a
// target's Module name (it is called only for targets that name one); a target whose
// module it rejects, or whose probe cannot be built, gets a result of class error
// saying why. env may be nil.
func RunOnce(ctx context.Context, targets []patrol.Target, module func(name string) (Module, error), env *Env, timeout time.Duration, limit int) map[string]patrol.Result {
	results := make(map[string]patrol.Result, len(targets))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(limit, 1))
	for _, t := range targets {
		t.Timeout = timeout
		var mod Module
		var p *Probe
		var err error
		if t.Module != "" {
			mod, err = module(t.Module)
		}
		if err == nil {
			p, err = New(t, mod, env)
		}
		if err != nil {
			r := patrol.Result{Target: t.ID, Start: time.Now()}
			r.Fail(patrol.ClassError, "%v", err)
			mu.Lock() // probes started for earlier targets may be writing
			results[t.ID] = r
			mu.Unlock()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r := p.Run(ctx)
			mu.Lock()
			results[t.ID] = r
			mu.Unlock()
		}()
	}
	wg.Wait()
	return results
}
