{{- define "portpatrol.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "portpatrol.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "portpatrol.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "portpatrol.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "portpatrol.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "portpatrol.image" -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}

{{- define "portpatrol.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "portpatrol.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}

{{/* The egress rules of networkPolicy.egress when restrict is on: DNS, the API server, then the user's rules. */}}
{{- define "portpatrol.egressRules" -}}
{{- $e := .Values.networkPolicy.egress -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
  {{- with $e.dns }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    {{- range $e.apiServer.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
  {{- with $e.apiServer.cidrs }}
  to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  {{- end }}
{{- with $e.rules }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The checks of cluster mode's values: what it needs, and what it cannot run beside. */}}
{{- define "portpatrol.clusterChecks" -}}
{{- $c := .Values.cluster -}}
{{- if $c.enabled -}}
{{- if not $c.url -}}
{{- fail "cluster.enabled needs cluster.url: the NATS servers, e.g. nats://nats.nats.svc:4222" -}}
{{- end -}}
{{- if and (not $c.storageSecret.name) (not (hasPrefix "postgres" (toString (default "" .Values.config.storage)))) -}}
{{- fail "cluster.enabled needs a shared PostgreSQL store: set cluster.storageSecret.name (a Secret with the DSN) or config.storage: postgres://…" -}}
{{- end -}}
{{- if .Values.daemonset.enabled -}}
{{- fail "cluster.enabled and daemonset.enabled exclude each other: in cluster mode the members share the probing; add probers with cluster.agents" -}}
{{- end -}}
{{- end -}}
{{- if and $c.agents (not $c.enabled) -}}
{{- fail "cluster.agents needs cluster.enabled: agents join the cluster the replicas lead" -}}
{{- end -}}
{{- range $c.agents -}}
{{- if not .location -}}
{{- fail "every entry of cluster.agents needs a location" -}}
{{- end -}}
{{- end -}}
{{- end -}}
