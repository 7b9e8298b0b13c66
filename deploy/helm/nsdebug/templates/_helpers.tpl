{{/* Labels every object carries; Helm's own bookkeeping labels come after deploy/'s. */}}
{{- define "nsdebug.helmLabels" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The agent's labels: the CLI finds agent pods by app.kubernetes.io/name=nsdebug-agent. */}}
{{- define "nsdebug.agentLabels" -}}
app.kubernetes.io/name: nsdebug-agent
app.kubernetes.io/part-of: nsdebug
app.kubernetes.io/component: agent
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{- define "nsdebug.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}
