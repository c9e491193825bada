package kube

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// ManifestError is a manifest document that could not be read, with its place.
type ManifestError struct {
	File string
	Line int
	Err  error
}

func (e *ManifestError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }

func (e *ManifestError) Unwrap() error { return e.Err }

// LoadManifests reads Kubernetes manifests — multi-document YAML or JSON files, or
// directories of *.yaml, *.yml and *.json files, walked recursively — into a LintInput.
// Kinds lint does not use (ConfigMaps, CRDs…) are skipped and counted in skipped; a
// document that does not parse is an error naming its file and line.
func LoadManifests(paths ...string) (in LintInput, skipped int, err error) {
	in = LintInput{Manifests: true, Origins: map[string]Origin{}}
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			return in, skipped, err
		}
		var files []string
		if st.IsDir() {
			err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				switch strings.ToLower(filepath.Ext(path)) {
				case ".yaml", ".yml", ".json":
					if !d.IsDir() {
						files = append(files, path)
					}
				}
				return nil
			})
			if err != nil {
				return in, skipped, err
			}
		} else {
			files = []string{p}
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				return in, skipped, err
			}
			n, err := addManifest(&in, f, data)
			skipped += n
			if err != nil {
				return in, skipped, err
			}
		}
	}
	return in, skipped, nil
}

// ParseManifest reads one multi-document YAML or JSON stream into in; file names it in
// origins and errors. It returns how many documents were of kinds lint does not use.
func ParseManifest(in *LintInput, file string, data []byte) (skipped int, err error) {
	if in.Origins == nil {
		in.Origins = map[string]Origin{}
	}
	in.Manifests = true
	return addManifest(in, file, data)
}

func addManifest(in *LintInput, file string, data []byte) (int, error) {
	skipped := 0
	for _, d := range splitDocuments(data) {
		n, err := addDocument(in, file, d.line, d.body)
		skipped += n
		if err != nil {
			return skipped, err
		}
	}
	return skipped, nil
}

type document struct {
	line int // 1-based line where the document's content starts
	body []byte
}

// splitDocuments splits a YAML stream at "---" lines, keeping each document's first
// line number. Blank and comment-only documents are dropped.
func splitDocuments(data []byte) []document {
	var docs []document
	var cur bytes.Buffer
	start, lineNo := 1, 0
	flush := func() {
		if hasContent(cur.Bytes()) {
			docs = append(docs, document{line: start, body: bytes.Clone(cur.Bytes())})
		}
		cur.Reset()
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		lineNo++
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "---" || strings.HasPrefix(line, "--- ") || strings.HasPrefix(line, "---\t") || strings.HasPrefix(line, "---#") {
			flush()
			start = lineNo + 1
			continue
		}
		if cur.Len() == 0 && !hasContent([]byte(line)) {
			start = lineNo + 1
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	flush()
	return docs
}

func hasContent(b []byte) bool {
	for _, l := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(l)
		if len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}

func addDocument(in *LintInput, file string, line int, body []byte) (int, error) {
	bad := func(err error) (int, error) { return 0, &ManifestError{File: file, Line: line, Err: err} }
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(body, &meta); err != nil {
		return bad(err)
	}
	if meta.Kind == "" {
		return bad(fmt.Errorf("document has no kind"))
	}
	if meta.Kind == "List" || strings.HasSuffix(meta.Kind, "List") && meta.APIVersion == "v1" {
		var list struct {
			Items []runtime.RawExtension `json:"items"`
		}
		if err := yaml.Unmarshal(body, &list); err != nil {
			return bad(err)
		}
		skipped := 0
		for _, it := range list.Items {
			n, err := addDocument(in, file, line, it.Raw)
			skipped += n
			if err != nil {
				return skipped, err
			}
		}
		return skipped, nil
	}
	obj := lintObject(meta.APIVersion, meta.Kind)
	if obj == nil {
		return 1, nil
	}
	if err := yaml.Unmarshal(body, obj); err != nil {
		return bad(err)
	}
	origin := func(kind, ns, name string) {
		in.Origins[kind+"/"+cmp.Or(ns, "default")+"/"+name] = Origin{File: file, Line: line}
	}
	workload := func(kind string, m metav1.ObjectMeta, t corev1.PodTemplateSpec) {
		in.Workloads = append(in.Workloads, Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name, Labels: t.Labels, Containers: t.Spec.Containers})
		origin(kind, m.Namespace, m.Name)
	}
	switch o := obj.(type) {
	case *corev1.Service:
		in.Services = append(in.Services, o)
		origin("Service", o.Namespace, o.Name)
	case *corev1.Namespace:
		in.Namespaces = append(in.Namespaces, o)
	case *networkingv1.Ingress:
		in.Ingresses = append(in.Ingresses, o)
		origin("Ingress", o.Namespace, o.Name)
	case *corev1.Pod:
		in.Workloads = append(in.Workloads, Workload{Kind: "Pod", Namespace: o.Namespace, Name: o.Name, Labels: o.Labels, Containers: o.Spec.Containers})
		origin("Pod", o.Namespace, o.Name)
	case *appsv1.Deployment:
		workload("Deployment", o.ObjectMeta, o.Spec.Template)
	case *appsv1.StatefulSet:
		workload("StatefulSet", o.ObjectMeta, o.Spec.Template)
	case *appsv1.DaemonSet:
		workload("DaemonSet", o.ObjectMeta, o.Spec.Template)
	case *appsv1.ReplicaSet:
		workload("ReplicaSet", o.ObjectMeta, o.Spec.Template)
	case *corev1.ReplicationController:
		if o.Spec.Template != nil {
			workload("ReplicationController", o.ObjectMeta, *o.Spec.Template)
		}
	case *batchv1.Job:
		workload("Job", o.ObjectMeta, o.Spec.Template)
	case *batchv1.CronJob:
		workload("CronJob", o.ObjectMeta, o.Spec.JobTemplate.Spec.Template)
	default:
		return 1, nil
	}
	return 0, nil
}

// lintObject returns a new object of the type lint reads for apiVersion and kind, or nil
// for a kind lint does not use (or another version of one). Decoding into the type
// directly, rather than through client-go's scheme, keeps every other API group of
// Kubernetes out of the binary.
func lintObject(apiVersion, kind string) any {
	switch apiVersion {
	case "v1":
		switch kind {
		case "Service":
			return &corev1.Service{}
		case "Namespace":
			return &corev1.Namespace{}
		case "Pod":
			return &corev1.Pod{}
		case "ReplicationController":
			return &corev1.ReplicationController{}
		}
	case "apps/v1":
		switch kind {
		case "Deployment":
			return &appsv1.Deployment{}
		case "StatefulSet":
			return &appsv1.StatefulSet{}
		case "DaemonSet":
			return &appsv1.DaemonSet{}
		case "ReplicaSet":
			return &appsv1.ReplicaSet{}
		}
	case "networking.k8s.io/v1":
		if kind == "Ingress" {
			return &networkingv1.Ingress{}
		}
	case "batch/v1":
		switch kind {
		case "Job":
			return &batchv1.Job{}
		case "CronJob":
			return &batchv1.CronJob{}
		}
	}
	return nil
}
