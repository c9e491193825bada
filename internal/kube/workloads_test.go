package kube

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/portpatrol/portpatrol/internal/auditlog"
	"github.com/portpatrol/portpatrol/internal/automation"
	"github.com/portpatrol/portpatrol/internal/patrol"
)

// recorder keeps automation's decisions.
type recorder struct {
	mu   sync.Mutex
	recs []auditlog.Record
}

func (r *recorder) Append(_ context.Context, x auditlog.Record) (auditlog.Entry, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, x)
	return auditlog.Entry{Seq: int64(len(r.recs)), Record: x}, nil
}

func (r *recorder) find(kind, outcome string) []auditlog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []auditlog.Record
	for _, x := range r.recs {
		if x.Kind == kind && x.Outcome == outcome {
			out = append(out, x)
		}
	}
	return out
}

// The kube action on a real API server: a rollout restart sets the pod template's
// restartedAt annotation of the Deployment; a scale that does not help is rolled back to
// the replicas it had; a missing Deployment fails the pre-check and changes nothing.
func TestIntegrationKubeAction(t *testing.T) {
	a := requireAPIServer(t)
	ctx := ctxT(t, time.Minute)
	cs := a.client(t, adminToken)
	replicas := int32(2)
	labels := map[string]string{"app": "web"}
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web-" + strings.ToLower(t.Name()[len(t.Name())-6:]), Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.invalid/web:1"}}}}}}
	if _, err := cs.AppsV1().Deployments("default").Create(ctx, dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.AppsV1().Deployments("default").Delete(context.Background(), dep.Name, metav1.DeleteOptions{})
	})
	w, err := NewWorkloads(a.restConfig(adminToken))
	if err != nil {
		t.Fatal(err)
	}
	var healthy sync.Map // target -> bool
	step := func(name string, p automation.Params) automation.Playbook {
		return automation.Playbook{Name: name, Mode: automation.PlaybookAuto, Trigger: automation.Trigger{Labels: []string{"pb=" + name}},
			Steps: []automation.Step{{Name: name, Action: "kube", Risk: automation.R1, Params: p,
				Verify: automation.Verify{Window: time.Second, Interval: 200 * time.Millisecond}}}}
	}
	cfg := automation.Config{Mode: automation.ModeOn, Playbooks: []automation.Playbook{
		step("restart", automation.Params{Kind: "Deployment", Namespace: "default", Name: dep.Name}),
		step("scale", automation.Params{Kind: "Deployment", Name: dep.Name, Operation: "scale", Replicas: 3, MinReplicas: 1, MaxReplicas: 4}),
		step("missing", automation.Params{Kind: "Deployment", Name: "nope"}),
	}}
	rec := &recorder{}
	e, err := automation.New(cfg, automation.Deps{Recorder: rec, Env: automation.ActionEnv{Kube: w},
		Probe: func(_ context.Context, al patrol.Alert) (bool, string) {
			ok, _ := healthy.Load(al.Target)
			return ok == true, "probe"
		}})
	if err != nil {
		t.Fatal(err)
	}
	alert := func(pb, target string) patrol.Alert {
		return patrol.Alert{ID: pb, Fingerprint: pb, Class: patrol.AlertUnreachable, Severity: patrol.P0, State: patrol.AlertPending,
			Target: target, Labels: map[string]string{"pb": pb}}
	}
	get := func() *appsv1.Deployment {
		d, err := cs.AppsV1().Deployments("default").Get(ctx, dep.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	healthy.Store("tcp://web:80", true)
	e.HandleAlert(ctx, alert("restart", "tcp://web:80"))
	at := get().Spec.Template.Annotations[RestartedAtAnnotation]
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		t.Fatalf("after the rollout restart the annotation is %q: %v", at, err)
	}
	if r := rec.find(auditlog.KindVerification, "recovered"); len(r) != 1 {
		t.Errorf("restart not recovered: %+v", rec.recs)
	}
	t.Logf("rollout restart: %s=%s", RestartedAtAnnotation, at)

	// Scale to 3; the target stays unhealthy, so the step is rolled back to 2.
	e.HandleAlert(ctx, alert("scale", "tcp://web2:80"))
	if n := *get().Spec.Replicas; n != 2 {
		t.Errorf("after the failed scale and its rollback: %d replicas, want 2", n)
	}
	if r := rec.find(auditlog.KindExecution, "applied"); len(r) != 2 || !strings.Contains(r[1].Reasons[0], "scale Deployment default/"+dep.Name+" to 3 replicas") {
		t.Errorf("scale execution: %+v", r)
	}
	if r := rec.find(auditlog.KindRollback, "rolled back"); len(r) != 1 {
		t.Errorf("scale not rolled back: %+v", r)
	}

	e.HandleAlert(ctx, alert("missing", "tcp://web3:80"))
	if r := rec.find(auditlog.KindExecution, "pre-check failed"); len(r) != 1 || !strings.Contains(r[0].Reasons[0], "Deployment default/nope does not exist") {
		t.Errorf("missing Deployment: %+v", r)
	}
}
