{{/* The chart's name. */}}
{{- define "tipoff.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The prefix of every object's name: `tipoff` for a release named tipoff. */}}
{{- define "tipoff.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "tipoff.operator" -}}{{ include "tipoff.fullname" . }}-operator{{- end -}}
{{- define "tipoff.processor" -}}{{ include "tipoff.fullname" . }}-processor{{- end -}}
{{- define "tipoff.catalog" -}}{{ include "tipoff.fullname" . }}-catalog{{- end -}}
{{- define "tipoff.processorEnv" -}}{{ include "tipoff.fullname" . }}-processor-env{{- end -}}

{{- define "tipoff.operatorServiceAccount" -}}
{{- default (include "tipoff.operator" .) .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- define "tipoff.processorServiceAccount" -}}
{{- default (include "tipoff.processor" .) .Values.processors.serviceAccount.name -}}
{{- end -}}

{{/* Standard labels; `component` is passed as the dict's second element. */}}
{{- define "tipoff.labels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "tipoff.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
app.kubernetes.io/part-of: tipoff
app.kubernetes.io/managed-by: {{ $root.Release.Service }}
app.kubernetes.io/version: {{ $root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The operator Pods' selector (stable across upgrades: never add to it). */}}
{{- define "tipoff.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tipoff.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "tipoff.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The catalog the operator loads: the user's text, or the chart's copy of config/pipeline.yaml. */}}
{{- define "tipoff.catalogText" -}}
{{- if .Values.catalog.pipeline -}}
{{- .Values.catalog.pipeline -}}
{{- else -}}
{{- .Files.Get "files/pipeline.yaml" -}}
{{- end -}}
{{- end -}}

{{/* The Secret holding one upstream key: the user's, or the chart's for a `value`. */}}
{{- define "tipoff.upstreamSecret" -}}
{{- $root := index . 0 -}}{{- $k := index . 1 -}}
{{- if $k.existingSecret -}}
{{- printf "%s/%s" $k.existingSecret (default $k.service $k.key) -}}
{{- else -}}
{{- printf "%s-upstream-%s/api-key" (include "tipoff.fullname" $root) $k.service -}}
{{- end -}}
{{- end -}}

{{- define "tipoff.validate" -}}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled -}}
{{- fail "metrics.serviceMonitor.enabled and metrics.podMonitor.enabled are both true: choose one (each scrapes the same /metrics, so both would double every series)" -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.apiServer.cidrs) -}}
{{- fail "networkPolicy.enabled needs networkPolicy.apiServer.cidrs: the API server's addresses (kubectl get endpoints kubernetes -o jsonpath='{.subsets[*].addresses[*].ip}'), each as a CIDR such as 10.0.0.1/32" -}}
{{- end -}}
{{- if and (not .Values.operator.leaderElection) (gt (int .Values.operator.replicas) 1) -}}
{{- fail "operator.leaderElection is false with operator.replicas > 1: two operators would reconcile the same runs; set operator.replicas to 1 or turn leader election on" -}}
{{- end -}}
{{- range .Values.processors.upstreamKeys -}}
{{- if and .existingSecret .value -}}
{{- fail (printf "processors.upstreamKeys[%s]: set existingSecret or value, not both" .service) -}}
{{- end -}}
{{- if not (or .existingSecret .value) -}}
{{- fail (printf "processors.upstreamKeys[%s]: set existingSecret (a Secret you manage) or value (the chart creates the Secret)" .service) -}}
{{- end -}}
{{- end -}}
{{- end -}}
