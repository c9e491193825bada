package kube

import (
	"encoding/json"
	"io"
	"strconv"
	"strings"

	"github.com/portpatrol/portpatrol/internal/patrol"
)

// ruleDocs describes every rule for reports: a short description for SARIF's rule
// metadata.
var ruleDocs = map[Rule]string{
	RuleNoReadyEndpoints:       "Service has no ready endpoints",
	RuleEndpointFailing:        "Ready endpoints of a Service fail their probe",
	RuleNodePortPartial:        "NodePort answers on some nodes only",
	RuleLoadBalancerPending:    "LoadBalancer has no external address",
	RuleIngressBackendMissing:  "Ingress routes to a missing Service or port",
	LintInternalExposed:        "Internal service exposed through NodePort or LoadBalancer",
	LintProductionNodePort:     "NodePort Service in a production namespace",
	LintUnnamedPort:            "Unnamed port in a multi-port Service",
	LintNumericTargetPort:      "targetPort by number where the container names the port",
	LintSelectorMatchesNothing: "Service selector matches no pods",
	LintTargetPortNotExposed:   "Named targetPort not declared by any selected container",
	LintExternalTrafficCluster: "LoadBalancer with externalTrafficPolicy: Cluster",
	LintIngressNumericPort:     "Ingress backend port by number where the Service names the port",
	LintIngressTLSNoSecret:     "Ingress TLS entry without secretName",
	RuleDNSMismatch:            "Cluster DNS answers a Service's name with another address than its ClusterIP",
	RuleDNSNoAnswer:            "Cluster DNS has no answer for a Service's name",
}

// MarshalJSON renders the severity as "P0".."P3".
func (f Finding) MarshalJSON() ([]byte, error) {
	type plain Finding
	return json.Marshal(struct {
		plain
		Severity string `json:"severity"`
	}{plain(f), f.Severity.String()})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (f *Finding) UnmarshalJSON(b []byte) error {
	type plain Finding
	var x struct {
		plain
		Severity string `json:"severity"`
	}
	if err := json.Unmarshal(b, &x); err != nil {
		return err
	}
	*f = Finding(x.plain)
	if x.Severity != "" {
		s, err := patrol.ParseSeverity(x.Severity)
		if err != nil {
			return err
		}
		f.Severity = s
	}
	return nil
}

func sarifLevel(s patrol.Severity) string {
	switch s {
	case patrol.P0, patrol.P1:
		return "error"
	case patrol.P2:
		return "warning"
	default:
		return "note"
	}
}

// WriteSARIF writes findings as a SARIF 2.1.0 log for code-scanning tools: one rule per
// finding rule, results with the file and line of the manifest (or a logical location
// "kube:NAMESPACE/SERVICE" for live findings), level error for P0–P1, warning for P2,
// note for P3.
func WriteSARIF(w io.Writer, version string, fs []Finding) error {
	type text struct {
		Text string `json:"text"`
	}
	type rule struct {
		ID                   string            `json:"id"`
		Name                 string            `json:"name"`
		ShortDescription     text              `json:"shortDescription"`
		DefaultConfiguration map[string]string `json:"defaultConfiguration"`
		HelpURI              string            `json:"helpUri"`
	}
	type region struct {
		StartLine int `json:"startLine"`
	}
	type physical struct {
		ArtifactLocation struct {
			URI string `json:"uri"`
		} `json:"artifactLocation"`
		Region *region `json:"region,omitempty"`
	}
	type logical struct {
		FullyQualifiedName string `json:"fullyQualifiedName"`
		Kind               string `json:"kind"`
	}
	type location struct {
		PhysicalLocation *physical `json:"physicalLocation,omitempty"`
		LogicalLocations []logical `json:"logicalLocations,omitempty"`
	}
	type result struct {
		RuleID              string            `json:"ruleId"`
		RuleIndex           int               `json:"ruleIndex"`
		Level               string            `json:"level"`
		Message             text              `json:"message"`
		Locations           []location        `json:"locations"`
		PartialFingerprints map[string]string `json:"partialFingerprints"`
		Properties          map[string]any    `json:"properties"`
	}
	var rules []rule
	index := map[Rule]int{}
	var results []result
	for _, f := range fs {
		i, ok := index[f.Rule]
		if !ok {
			i = len(rules)
			index[f.Rule] = i
			rules = append(rules, rule{
				ID: string(f.Rule), Name: ruleName(f.Rule),
				ShortDescription:     text{ruleDocs[f.Rule]},
				DefaultConfiguration: map[string]string{"level": sarifLevel(f.Severity)},
				HelpURI:              "https://github.com/portpatrol/portpatrol/blob/main/docs/kubernetes.md#" + string(f.Rule),
			})
		}
		msg := f.Summary
		if f.Description != "" {
			msg += ". " + f.Description
		}
		loc := location{LogicalLocations: []logical{{FullyQualifiedName: f.Subject, Kind: "resource"}}}
		if file, line, ok := splitSource(f.Source); ok {
			p := &physical{}
			p.ArtifactLocation.URI = file
			if line > 0 {
				p.Region = &region{StartLine: line}
			}
			loc.PhysicalLocation = p
		}
		results = append(results, result{
			RuleID: string(f.Rule), RuleIndex: i, Level: sarifLevel(f.Severity),
			Message:             text{msg},
			Locations:           []location{loc},
			PartialFingerprints: map[string]string{"portpatrol/v1": f.Key()},
			Properties:          map[string]any{"severity": f.Severity.String(), "class": string(f.Class)},
		})
	}
	if results == nil {
		results = []result{}
	}
	log := map[string]any{
		"$schema": "https://json.schemastore.org/sarif-2.1.0.json",
		"version": "2.1.0",
		"runs": []any{map[string]any{
			"tool": map[string]any{"driver": map[string]any{
				"name":           "portpatrol",
				"informationUri": "https://github.com/portpatrol/portpatrol",
				"version":        version,
				"rules":          rules,
			}},
			"results": results,
		}},
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// ruleName turns kube_unnamed_port into UnnamedPort, SARIF's rule name style.
func ruleName(r Rule) string {
	var b strings.Builder
	for _, part := range strings.Split(strings.TrimPrefix(string(r), "kube_"), "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}

// splitSource splits "FILE:LINE"; "live" and "" are no file.
func splitSource(s string) (string, int, bool) {
	if s == "" || s == "live" {
		return "", 0, false
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return s, 0, true
	}
	n, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return s, 0, true
	}
	return s[:i], n, true
}
