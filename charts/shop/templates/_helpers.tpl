{{- define "shop.fullname" -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shop.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "shop.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: web
{{- end -}}

{{/* Settings the pod's layout fixes, secrets and development mode: never from values. */}}
{{- define "shop.forbidden" -}}
server.host server.port server.ops_host server.ops_port risk.url log.format database.url auth.access_token_secret auth.csrf_secret gateway.api_key dev.enabled dev.demo_data decision_log.url decision_log.email_hash_key decision_log.spool_dir model.dir policy.path model.ort_library
{{- end -}}

{{/* `settings` (dotted keys) as PREFIX__A__B variables. */}}
{{- define "shop.settingsEnv" -}}
{{- $forbidden := splitList " " (include "shop.forbidden" .root) -}}
{{- range $key, $value := .settings }}
{{- if has $key $forbidden }}
{{- fail (printf "%s is set by the chart or a Secret, not by values" $key) }}
{{- end }}
- name: {{ printf "%s__%s" $.prefix ($key | upper | replace "." "__") }}
  {{- /* YAML numbers reach templates as floats: 1073741824 would print as 1.073741824e+09. */}}
  {{- if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
  value: {{ int64 $value | toString | quote }}
  {{- else }}
  value: {{ $value | toString | quote }}
  {{- end }}
{{- end }}
{{- end -}}

{{- define "shop.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef: {name: {{ .secret }}, key: {{ .key }}}
{{- end -}}

{{- define "shop.securityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities: {drop: [ALL]}
seccompProfile: {type: RuntimeDefault}
{{- end -}}
