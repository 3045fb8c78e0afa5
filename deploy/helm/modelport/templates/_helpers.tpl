{{/*
The chart's name, shortened to the 63 characters a label value may hold.
*/}}
{{- define "modelport.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The release's full name, used for every object: the release name when it holds the chart's
name already, else "RELEASE-CHART"; 63 characters at most (DNS label rules).
*/}}
{{- define "modelport.fullname" -}}
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

{{/*
The chart label: name and version.
*/}}
{{- define "modelport.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The labels of every object.
*/}}
{{- define "modelport.labels" -}}
helm.sh/chart: {{ include "modelport.chart" . }}
{{ include "modelport.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelport
{{- end }}

{{/*
The labels a selector matches (never changed by an upgrade: a Deployment's selector is
immutable).
*/}}
{{- define "modelport.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelport.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The service account the pods run as.
*/}}
{{- define "modelport.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "modelport.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret the pods read their secret settings from: the user's, or the chart's.
*/}}
{{- define "modelport.secretName" -}}
{{- default (include "modelport.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/*
The image reference: repository and tag (the chart's appVersion unless one is given).
*/}}
{{- define "modelport.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/*
The chart's Secret data: variable name -> value, only the values that are set.
*/}}
{{- define "modelport.secretData" -}}
{{- $s := .Values.secret }}
{{- $data := dict }}
{{- with $s.databaseUrl }}{{ $_ := set $data "MODELPORT_DATABASE_URL" . }}{{ end }}
{{- with $s.storeUrl }}{{ $_ := set $data "MODELPORT_STORE_URL" . }}{{ end }}
{{- with $s.apiKey }}{{ $_ := set $data "MODELPORT_API_KEY" . }}{{ end }}
{{- with $s.secretsKey }}{{ $_ := set $data "MODELPORT_SECRETS_KEY" . }}{{ end }}
{{- with $s.s3.accessKeyId }}{{ $_ := set $data "AWS_ACCESS_KEY_ID" . }}{{ end }}
{{- with $s.s3.secretAccessKey }}{{ $_ := set $data "AWS_SECRET_ACCESS_KEY" . }}{{ end }}
{{- range $key, $value := $s.extra }}{{ $_ := set $data $key $value }}{{ end }}
{{- toYaml $data }}
{{- end }}
