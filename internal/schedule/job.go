package schedule

import (
	"context"
	"fmt"
	"time"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// Defaults for the zero values of Job and Config fields.
const (
	DefaultInterval         = 30 * time.Second
	DefaultTimeout          = 10 * time.Second // capped at the job's interval
	DefaultFailureThreshold = 2
	DefaultSuccessThreshold = 1
	DefaultConcurrency      = 256
	DefaultPerHost          = 8
	DefaultFlapWindow       = 10 * time.Minute
	DefaultFlapChanges      = 5
)

// MinInterval is the shortest interval a job may have.
const MinInterval = time.Millisecond

// Job is one check to run again and again. ID and Run are required; every other
// zero field means its default. Update keeps its own copy of each Job; the *Job handed
// out in Events and JobStates is shared and must not be modified.
type Job struct {
	// ID names the job; it must be unique and non-empty. It also fixes the job's
	// phase within its interval (see the package comment).
	ID string
	// Host is what the per-host concurrency cap counts by; empty means the job is
	// not subject to it.
	Host string
	// Interval is the time between runs; zero means DefaultInterval.
	Interval time.Duration
	// Timeout bounds one run through its context; zero means DefaultTimeout or the
	// interval, whichever is shorter. A timeout longer than the interval is rejected.
	Timeout time.Duration
	// FailureThreshold is the number of consecutive failing results that make the
	// status down; zero means DefaultFailureThreshold.
	FailureThreshold int
	// SuccessThreshold is the number of consecutive usable results that make the
	// status up; zero means DefaultSuccessThreshold.
	SuccessThreshold int
	// Run checks once. It must return when ctx is done. A result is a failure when
	// Result.Up() is false.
	Run func(ctx context.Context) patrol.Result
	// Try, when set, attempts a run that can finish at once without blocking, such as
	// a half-open check of a port on this host, whose answer arrives within the send.
	// It returns the result and true, or false having left nothing behind, and the run
	// then goes to a worker through Run as usual. The scheduler calls Try from its own
	// loop, saving a worker hand-off and a context per run, so Try must never wait.
	Try func() (patrol.Result, bool)
	// Labels are passed through to Events and JobStates untouched.
	Labels map[string]string
	// Soon, when set, brings a job's first run forward when an Update adds it to a
	// running scheduler: at its phase within Soon rather than within its interval,
	// whichever comes first. Later runs follow Interval from there. A cluster member
	// sets it on the targets it takes over from a member that died, so that they are
	// probed again within Soon instead of up to an interval later.
	Soon time.Duration
}

// JobError reports a job that Update rejected.
type JobError struct {
	Index  int    // position in the slice given to Update
	ID     string // the job's ID, possibly empty
	Reason string
}

func (e *JobError) Error() string {
	return fmt.Sprintf("job %d %q: %s", e.Index, e.ID, e.Reason)
}

// normalize checks in, the job at index i of an Update, and writes the scheduler's own
// copy of it to out with the defaults filled in.
func normalize(in, out *Job, i int) error {
	j := *in
	bad := func(format string, args ...any) error {
		return &JobError{Index: i, ID: j.ID, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case j.ID == "":
		return bad("empty ID")
	case j.Run == nil:
		return bad("no Run function")
	case j.Interval < 0:
		return bad("negative interval %s", j.Interval)
	case j.Timeout < 0:
		return bad("negative timeout %s", j.Timeout)
	case j.FailureThreshold < 0:
		return bad("negative failure threshold %d", j.FailureThreshold)
	case j.SuccessThreshold < 0:
		return bad("negative success threshold %d", j.SuccessThreshold)
	}
	if j.Interval == 0 {
		j.Interval = DefaultInterval
	}
	if j.Interval < MinInterval {
		return bad("interval %s is shorter than %s", j.Interval, MinInterval)
	}
	if j.Timeout > j.Interval {
		return bad("timeout %s is longer than the interval %s", j.Timeout, j.Interval)
	}
	if j.Timeout == 0 {
		j.Timeout = min(DefaultTimeout, j.Interval)
	}
	if j.FailureThreshold == 0 {
		j.FailureThreshold = DefaultFailureThreshold
	}
	if j.SuccessThreshold == 0 {
		j.SuccessThreshold = DefaultSuccessThreshold
	}
	*out = j
	return nil
}

// Event reports one completed run. It is passed to Config.OnResult. Its Result shares
// slices and maps with the scheduler's copy and must be treated as read-only.
type Event struct {
	Job    *Job // the job as it was when the run started; read-only
	Result patrol.Result
	Status patrol.Status // the judged status after this result; every job starts unknown
	Prev   patrol.Status // the status before it
	// Changed is Status != Prev.
	Changed bool
	// Flapping reports that the job's state has changed Config.FlapChanges times
	// within Config.FlapWindow and has not yet been stable for a whole window.
	// Consumers should report such a job once as flapping rather than page on each
	// change.
	Flapping bool
	// FlapChanged is true when this result started or ended flapping.
	FlapChanged bool
	// Confirm is true when this run was a fast confirmation of an earlier failure.
	Confirm bool
	// Lag is how late the run started: its start time minus its due time, including
	// any wait for a concurrency slot.
	Lag time.Duration
}

// JobState is a job's condition at one moment, as Snapshot reports it. It is a copy,
// except for the read-only Job and Last it points to.
type JobState struct {
	Job      *Job // read-only
	Status   patrol.Status
	Flapping bool
	// Since is when Status last changed; zero if it never has.
	Since time.Time
	// Successes and Failures count the current run of consecutive usable or failing
	// results; one of them is zero.
	Successes, Failures int
	// Last is the latest result, nil before the first; read-only.
	Last *patrol.Result
}

// TargetState returns the job's state as the domain states a target's: its ID,
// labels and the gist of its latest result.
func (js JobState) TargetState() patrol.TargetState {
	ts := patrol.TargetState{Target: js.Job.ID, Status: js.Status, Flapping: js.Flapping, Since: js.Since, Labels: js.Job.Labels}
	if js.Last != nil {
		ts.Last = js.Last.Summary()
	}
	return ts
}

// TargetState returns the target's state after the event, as of its result: a status
// that changed with this result has been so since the result's start.
func (ev Event) TargetState() patrol.TargetState {
	ts := patrol.TargetState{Target: ev.Result.Target, Status: ev.Status, Flapping: ev.Flapping, Since: ev.Result.Start,
		Last: ev.Result.Summary()}
	if ev.Job != nil {
		ts.Labels = ev.Job.Labels
	}
	return ts
}

// hashID hashes a job ID: FNV-1a, then the 64-bit finalizer of MurmurHash3 so that
// IDs differing only in their last bytes still land far apart modulo an interval.
func hashID(id string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(id); i++ {
		h ^= uint64(id[i])
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
