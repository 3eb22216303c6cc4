{{/* Chart name, truncated to the 63 characters a label value allows. */}}
{{- define "cio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects. */}}
{{- define "cio.fullname" -}}
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

{{- define "cio.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "cio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "cio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "cio.labels" -}}
helm.sh/chart: {{ include "cio.chart" . }}
{{ include "cio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: cloud-instance-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "cio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "cio.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "cio.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Leader election is forced on with more than one replica: two active operators would both
create the same VM. Turning it off explicitly with replicas > 1 is refused at render time.
*/}}
{{- define "cio.leaderElect" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "leaderElection.enabled=false needs replicaCount <= 1: several active operators would act on the same VMs" }}
{{- end }}
{{- if and (gt (int .Values.shards) 1) (not .Values.leaderElection.enabled) }}
{{- fail "shards > 1 needs leaderElection.enabled: each shard is a Lease" }}
{{- end }}
{{- if .Values.leaderElection.enabled }}true{{ end }}
{{- end }}

{{/* PromQL label matchers selecting this release's metrics series. */}}
{{- define "cio.metricsSelector" -}}
job="{{ include "cio.fullname" . }}-metrics",namespace="{{ .Release.Namespace }}"
{{- end }}

{{/*
The permissions the operator needs in every watched namespace (or cluster-wide). Exact verbs on
exact resources, no wildcards; Secrets are read-only.
*/}}
{{- define "cio.rules" -}}
- apiGroups: ["compute.instance-operator.dev"]
  resources: ["cloudinstances", "instancetemplates"]
  verbs: ["get", "list", "watch", "create", "update", "patch", "delete"]
- apiGroups: ["compute.instance-operator.dev"]
  resources: ["cloudinstances/status", "instancetemplates/status"]
  verbs: ["get", "update", "patch"]
- apiGroups: ["compute.instance-operator.dev"]
  resources: ["cloudinstances/finalizers", "instancetemplates/finalizers"]
  verbs: ["update"]
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch"]
# Connection Secrets (spec.writeConnectionSecretToRef): the operator writes only Secrets its
# objects own and refuses any other (RBAC cannot scope this to owned objects).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["create", "update", "delete"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/* The metrics port's name says what it speaks. */}}
{{- define "cio.metricsPortName" -}}
{{- if .Values.metrics.secure }}https-metrics{{ else }}http-metrics{{ end }}
{{- end }}
