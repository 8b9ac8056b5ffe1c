{{/* Name of the chart, or nameOverride. */}}
{{- define "mca.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Base name of every object: the release name, prefixed unless it contains the chart name. */}}
{{- define "mca.fullname" -}}
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

{{- define "mca.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mca.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{- define "mca.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "mca.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mca
{{- end }}

{{- define "mca.serviceAccountName" -}}
{{- default (include "mca.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* The mca image: repository:tag, or repository@digest. */}}
{{- define "mca.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the serving certificate (tls.crt, tls.key). */}}
{{- define "mca.tlsSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "mca.fullname" .)) .Values.certificate.existingSecret }}
{{- end }}

{{/* The cert-manager Certificate of the serving certificate. */}}
{{- define "mca.certificateName" -}}
{{- printf "%s-webhook" (include "mca.fullname" .) }}
{{- end }}

{{/* DNS names the API server uses for the Service. */}}
{{- define "mca.serviceDnsNames" -}}
{{- $svc := include "mca.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) | toJson }}
{{- end }}

{{/* A caBundle value: PEM text is base64-encoded, anything else is taken as base64 already. */}}
{{- define "mca.caBundle" -}}
{{- if hasPrefix "-----BEGIN" (trim .) }}
{{- b64enc (trim .) }}
{{- else }}
{{- trim . }}
{{- end }}
{{- end }}

{{/* Refuses contradictory values before anything is rendered. */}}
{{- define "mca.validate" -}}
{{- if not (has .Values.webhook.failurePolicy (list "Fail" "Ignore")) }}
{{- fail (printf "webhook.failurePolicy must be Fail or Ignore, got %q" (toString .Values.webhook.failurePolicy)) }}
{{- end }}
{{- if not (has .Values.webhook.reinvocationPolicy (list "Never" "IfNeeded")) }}
{{- fail (printf "webhook.reinvocationPolicy must be Never or IfNeeded, got %q" (toString .Values.webhook.reinvocationPolicy)) }}
{{- end }}
{{- $t := int .Values.webhook.timeoutSeconds }}
{{- if or (lt $t 1) (gt $t 30) }}
{{- fail (printf "webhook.timeoutSeconds must be 1-30, got %v" .Values.webhook.timeoutSeconds) }}
{{- end }}
{{- if and .Values.webhook.url (not (hasPrefix "https://" .Values.webhook.url)) }}
{{- fail (printf "webhook.url must start with https://, got %q" .Values.webhook.url) }}
{{- end }}
{{- if and .Values.webhook.url (not .Values.webhook.caBundle) }}
{{- fail "webhook.url needs webhook.caBundle: the CA (PEM) of the certificate served at that URL" }}
{{- end }}
{{- if and .Values.certManager.enabled .Values.certificate.existingSecret }}
{{- fail "certManager.enabled and certificate.existingSecret are two ways to get the certificate: pick one" }}
{{- end }}
{{- if and .Values.certificate.existingSecret (not .Values.certificate.caBundle) }}
{{- fail "certificate.existingSecret needs certificate.caBundle: the CA (PEM) that signed the Secret's tls.crt" }}
{{- end }}
{{- if and .Values.sidecar.imagePullPolicy (not (has .Values.sidecar.imagePullPolicy (list "Always" "IfNotPresent" "Never"))) }}
{{- fail (printf "sidecar.imagePullPolicy must be Always, IfNotPresent or Never, got %q" .Values.sidecar.imagePullPolicy) }}
{{- end }}
{{- end }}
