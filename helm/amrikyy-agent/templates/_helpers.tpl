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

{{/* An env value as a string: numbers from values files (float64) print without an exponent. */}}
{{- define "amrikyy-agent.envString" -}}
{{- if and (kindIs "float64" .) (eq . (float64 (int64 .))) }}{{ int64 . }}{{ else }}{{ toString . }}{{ end }}
{{- end }}

{{/* SHUTDOWN_GRACE_MS as the app reads it (its default is 10000), rounded up to whole seconds. */}}
{{- define "amrikyy-agent.shutdownSeconds" -}}
{{- $ms := int (include "amrikyy-agent.envString" (get .Values.env "SHUTDOWN_GRACE_MS" | default 10000)) }}
{{- div (add $ms 999) 1000 }}
{{- end }}

{{/* The pod's grace period: preStop + SHUTDOWN_GRACE_MS + 10 s, or the value set, which must exceed the sum. */}}
{{- define "amrikyy-agent.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (int (include "amrikyy-agent.shutdownSeconds" .)) }}
{{- if .Values.terminationGracePeriodSeconds }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + SHUTDOWN_GRACE_MS (%d s), or the pod is killed mid-shutdown; leave it unset to derive it" (int .Values.terminationGracePeriodSeconds) $needed) }}
{{- end }}
{{- int .Values.terminationGracePeriodSeconds }}
{{- else }}
{{- add $needed 10 }}
{{- end }}
{{- end }}

{{/* Values that cannot install fail at template time with a clear message (values.schema.json makes `helm lint` fail too). */}}
{{- define "amrikyy-agent.checkValues" -}}
{{- $secret := .Values.secretEnv | default dict }}
{{- $replicated := or (gt (int .Values.replicaCount) 1) .Values.autoscaling.enabled }}
{{- if and $replicated (not .Values.existingSecret) (not $secret.DATABASE_URL) }}
{{- fail "secretEnv.DATABASE_URL (or existingSecret with DATABASE_URL) is required with more than one replica or autoscaling: the embedded PGlite database is per pod" }}
{{- end }}
{{- $production := eq (get .Values.env "NODE_ENV" | default "production") "production" }}
{{- if and $production (not .Values.existingSecret) (not $secret.JWT_SECRET) }}
{{- fail "secretEnv.JWT_SECRET (at least 32 characters) is required when NODE_ENV=production" }}
{{- end }}
{{- if and $secret.JWT_SECRET (lt (len (toString $secret.JWT_SECRET)) 32) }}
{{- fail "secretEnv.JWT_SECRET must be at least 32 characters" }}
{{- end }}
{{- $llm := get .Values.env "LLM_PROVIDER" | default "auto" }}
{{- $hasLlm := or $secret.GEMINI_API_KEY $secret.OPENAI_BASE_URL (get .Values.env "OPENAI_BASE_URL") }}
{{- if and $production (eq $llm "auto") (not .Values.existingSecret) (not $hasLlm) }}
{{- fail "secretEnv.GEMINI_API_KEY (or OPENAI_BASE_URL) is required when NODE_ENV=production; set env.LLM_PROVIDER=offline to serve offline placeholder answers on purpose" }}
{{- end }}
{{- with get .Values.env "PORT" }}
{{- if ne (include "amrikyy-agent.envString" .) (toString $.Values.containerPort) }}
{{- fail "env.PORT differs from containerPort: set containerPort instead (the chart sets PORT from it)" }}
{{- end }}
{{- end }}
{{- end }}

{{/* env.METRICS_PORT as a number ("" when unset): the separate, unauthenticated metrics listener. */}}
{{- define "amrikyy-agent.metricsPort" -}}
{{- with get .Values.env "METRICS_PORT" }}{{ include "amrikyy-agent.envString" . }}{{ end }}
{{- end }}
