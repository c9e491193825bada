package render

// The default templates. A title is folded onto one line after rendering; a body is
// plain text with one fact per line, which reads the same in mail, chat markdown and
// Telegram HTML. Impact notices go through their own templates, which may use only a
// service's name (labels service, app or customer), its status and times.

// partials are prepended to every template, defaults and overrides alike.
const partials = `
{{- define "alert_en"}}{{$d := .D}}{{$a := .A}}
{{- if eq $a.State "resolved"}}Resolved at {{time $a.ResolvedAt}}{{if eq $a.ResolvedBy "auto"}} (condition cleared){{else if $a.ResolvedBy}} by {{$a.ResolvedBy}}{{end}}, after {{since $d $a.StartsAt $a.ResolvedAt}}.
{{else if eq $a.State "acknowledged"}}Acknowledged{{with $a.AckedBy}} by {{.}}{{end}} at {{time $a.AckedAt}}.
{{end -}}
What: {{$a.Summary}}
{{with $a.Description}}Details: {{.}}
{{end -}}
{{with $a.Diagnosis}}Diagnosis: {{.}}
{{end -}}
{{with $a.Impact}}Impact: {{.}}
{{end -}}
Where: {{$a.Target}}{{with $a.Labels}} ({{labels .}}){{end}}
Since: {{time $a.StartsAt}}{{if ne $a.State "resolved"}} ({{ago $d $a.StartsAt}}){{end}}
Severity: {{$a.Severity}}{{if and (not $a.Deadline.IsZero) (ne $a.State "resolved") (ne $a.State "acknowledged")}}, acknowledge by {{clock $a.Deadline}} ({{until $d $a.Deadline}}){{end}}
{{if ne $a.State "resolved"}}{{with evidence $d $a}}Evidence: {{.}}
{{end}}{{with $a.RunbookURL}}Runbook: {{.}}
{{end}}{{end -}}
{{with $a.Told}}Told: {{join . ", "}}
{{end -}}
{{end}}

{{- define "alert_zh"}}{{$d := .D}}{{$a := .A}}
{{- if eq $a.State "resolved"}}已于 {{time $a.ResolvedAt}} 恢复{{if eq $a.ResolvedBy "auto"}}（条件已消除）{{else if $a.ResolvedBy}}（{{$a.ResolvedBy}} 处理）{{end}}，持续 {{since $d $a.StartsAt $a.ResolvedAt}}。
{{else if eq $a.State "acknowledged"}}{{with $a.AckedBy}}{{.}} {{end}}已于 {{time $a.AckedAt}} 确认。
{{end -}}
内容：{{$a.Summary}}
{{with $a.Description}}详情：{{.}}
{{end -}}
{{with $a.Diagnosis}}诊断：{{.}}
{{end -}}
{{with $a.Impact}}影响：{{.}}
{{end -}}
位置：{{$a.Target}}{{with $a.Labels}}（{{labels .}}）{{end}}
开始：{{time $a.StartsAt}}{{if ne $a.State "resolved"}}（{{ago $d $a.StartsAt}}）{{end}}
级别：{{$a.Severity}}{{if and (not $a.Deadline.IsZero) (ne $a.State "resolved") (ne $a.State "acknowledged")}}，请在 {{clock $a.Deadline}} 前确认（{{until $d $a.Deadline}}）{{end}}
{{if ne $a.State "resolved"}}{{with evidence $d $a}}证据：{{.}}
{{end}}{{with $a.RunbookURL}}处理手册：{{.}}
{{end}}{{end -}}
{{with $a.Told}}已通知：{{join . "、"}}
{{end -}}
{{end}}

{{- define "impact_en"}}
{{- range .Alerts}}{{if eq .State "resolved"}}{{service $ .}} has been working normally again since {{time .ResolvedAt}}; the disruption lasted {{since $ .StartsAt .ResolvedAt}}.
{{else}}{{service $ .}}: {{impact $ .}} since {{time .StartsAt}}.
{{end}}{{end}}
{{if allResolved .}}We apologise for the inconvenience.{{else}}We are working on it and will post an update when it is resolved.{{end}}
{{end}}

{{- define "impact_zh"}}
{{- range .Alerts}}{{if eq .State "resolved"}}{{service $ .}} 已于 {{time .ResolvedAt}} 恢复正常，影响持续 {{since $ .StartsAt .ResolvedAt}}。
{{else}}{{service $ .}}：{{impact $ .}}，开始于 {{time .StartsAt}}。
{{end}}{{end}}
{{if allResolved .}}给您带来不便，敬请谅解。{{else}}我们正在处理，恢复后会再次通知。{{end}}
{{end}}`

var defaultTitle = map[string]string{
	"en": `{{if eq .Kind "test"}}[TEST] portpatrol test notification to {{.Receiver}}
{{- else if eq .Kind "impact"}}{{if allResolved .}}Resolved: {{services .}}{{else}}Service disruption: {{services .}}{{end}}
{{- else}}[{{.Severity}} {{word .}}] {{subject .}}{{end}}`,
	"zh": `{{if eq .Kind "test"}}[测试] portpatrol 测试通知：{{.Receiver}}
{{- else if eq .Kind "impact"}}{{if allResolved .}}已恢复：{{services .}}{{else}}服务异常：{{services .}}{{end}}
{{- else}}[{{.Severity}} {{word .}}] {{subject .}}{{end}}`,
}

var defaultBody = map[string]string{
	"en": `{{if eq .Kind "test"}}This is a test notification from portpatrol to receiver {{.Receiver}}, sent at {{time .Now}}.
If you can read it, the receiver works; no action is needed.
{{- else if eq .Kind "impact"}}{{template "impact_en" .}}
{{- else}}
{{- if eq .Kind "escalation"}}Escalated: not acknowledged in time.

{{else if eq .Kind "reminder"}}Reminder: still firing and not acknowledged.

{{end}}
{{- range $i, $a := .Alerts}}{{if $i}}
{{end}}{{template "alert_en" (pair $ $a)}}{{end}}
{{- end}}`,
	"zh": `{{if eq .Kind "test"}}这是 portpatrol 发给接收方 {{.Receiver}} 的测试通知，发送于 {{time .Now}}。
能看到这条消息说明配置正确，无需处理。
{{- else if eq .Kind "impact"}}{{template "impact_zh" .}}
{{- else}}
{{- if eq .Kind "escalation"}}已升级：未在时限内确认。

{{else if eq .Kind "reminder"}}提醒：告警仍在持续，尚未确认。

{{end}}
{{- range $i, $a := .Alerts}}{{if $i}}
{{end}}{{template "alert_zh" (pair $ $a)}}{{end}}
{{- end}}`,
}
