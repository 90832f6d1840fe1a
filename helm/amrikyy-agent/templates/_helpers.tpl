{{/* Names and labels shared by every template. */}}
{{- define "amrikyy-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amrikyy-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "amrikyy-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "amrikyy-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "amrikyy-agent.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "amrikyy-agent.labels" -}}
helm.sh/chart: {{ include "amrikyy-agent.chart" . }}
{{ include "amrikyy-agent.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "amrikyy-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "amrikyy-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the secret environment: an existing one, or the chart's. */}}
{{- define "amrikyy-agent.secretName" -}}
{{- default (include "amrikyy-agent.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Several replicas (or an autoscaler) need a shared PostgreSQL: PGlite lives in one pod's emptyDir. */}}
{{- define "amrikyy-agent.checkDatabase" -}}
{{- $replicated := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and $replicated (not .Values.existingSecret) (not .Values.secretEnv.DATABASE_URL) }}
{{- fail "secretEnv.DATABASE_URL (or existingSecret with DATABASE_URL) is required with more than one replica or autoscaling: the embedded PGlite database is per pod" }}
{{- end }}
{{- if and (eq (get .Values.env "NODE_ENV" | default "production") "production") (not .Values.existingSecret) (not .Values.secretEnv.JWT_SECRET) }}
{{- fail "secretEnv.JWT_SECRET (at least 32 characters) is required when NODE_ENV=production" }}
{{- end }}
{{- end }}
