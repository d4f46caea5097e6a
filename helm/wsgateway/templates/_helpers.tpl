{{/*
Chart name, at most 63 characters (a DNS label).
*/}}
{{- define "wsgateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: the release name, plus the chart name unless the release name
already contains it; at most 63 characters.
*/}}
{{- define "wsgateway.fullname" -}}
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
Name of a resource beside the gateway: fullname-suffix, at most 63
characters.
*/}}
{{- define "wsgateway.suffixedName" -}}
{{- $root := index . 0 }}
{{- $suffix := index . 1 }}
{{- printf "%s-%s" (include "wsgateway.fullname" $root | trunc (int (sub 62 (len $suffix)))) $suffix | trimSuffix "-" }}
{{- end }}

{{/*
Chart label value.
*/}}
{{- define "wsgateway.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every resource (without the component).
*/}}
{{- define "wsgateway.labels" -}}
helm.sh/chart: {{ include "wsgateway.chart" . }}
{{ include "wsgateway.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: wsgateway
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels of the release.
*/}}
{{- define "wsgateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wsgateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the gateway pods.
*/}}
{{- define "wsgateway.gatewaySelectorLabels" -}}
{{ include "wsgateway.selectorLabels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Labels of the gateway's resources.
*/}}
{{- define "wsgateway.gatewayLabels" -}}
{{ include "wsgateway.labels" . }}
app.kubernetes.io/component: gateway
{{- end }}

{{/*
Name, selector labels and labels of the example echo backend.
*/}}
{{- define "wsgateway.echoBackendName" -}}
{{- include "wsgateway.suffixedName" (list . "echo-backend") }}
{{- end }}

{{- define "wsgateway.echoBackendSelectorLabels" -}}
{{ include "wsgateway.selectorLabels" . }}
app.kubernetes.io/component: echo-backend
{{- end }}

{{- define "wsgateway.echoBackendLabels" -}}
{{ include "wsgateway.labels" . }}
app.kubernetes.io/component: echo-backend
{{- end }}

{{/*
ServiceAccount of the pods.
*/}}
{{- define "wsgateway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "wsgateway.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
Image reference: repository@digest, or repository:tag (tag defaults to the
chart's appVersion).
*/}}
{{- define "wsgateway.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
Whole seconds (rounded up) of a gateway duration such as 25s, 500ms, 1m, 2h.
*/}}
{{- define "wsgateway.durationSeconds" -}}
{{- $d := toString . }}
{{- if regexMatch "^[0-9]+ms$" $d }}
{{- div (add (trimSuffix "ms" $d | atoi) 999) 1000 }}
{{- else if regexMatch "^[0-9]+s$" $d }}
{{- trimSuffix "s" $d | atoi }}
{{- else if regexMatch "^[0-9]+m$" $d }}
{{- mul (trimSuffix "m" $d | atoi) 60 }}
{{- else if regexMatch "^[0-9]+h$" $d }}
{{- mul (trimSuffix "h" $d | atoi) 3600 }}
{{- else }}
{{- fail (printf "%q is not a duration such as 25s, 500ms, 1m" $d) }}
{{- end }}
{{- end }}

{{/*
Mount points of the Secrets.
*/}}
{{- define "wsgateway.configDir" -}}/etc/wsgateway{{- end }}
{{- define "wsgateway.tlsDir" -}}/etc/wsgateway/tls{{- end }}
{{- define "wsgateway.adminTlsDir" -}}/etc/wsgateway/admin-tls{{- end }}
{{- define "wsgateway.adminClientCADir" -}}/etc/wsgateway/admin-client-ca{{- end }}
{{- define "wsgateway.adminTokenDir" -}}/etc/wsgateway/admin-token{{- end }}
{{- define "wsgateway.clusterTokenDir" -}}/etc/wsgateway/cluster-token{{- end }}
{{- define "wsgateway.clusterRedisDir" -}}/etc/wsgateway/cluster-redis{{- end }}

{{/*
The Secret holding the admin client CA, or "" when mTLS is off; the CA's
own volume is only needed when it is another Secret than admin.tls.secretName.
*/}}
{{- define "wsgateway.adminClientCASecret" -}}
{{- if and .Values.admin.tls.secretName .Values.admin.tls.clientCA.enabled }}
{{- default .Values.admin.tls.secretName .Values.admin.tls.clientCA.secretName }}
{{- end }}
{{- end }}

{{/*
The gateway's config.yaml: the keys of .Values.config that are set (null,
"" and empty lists are left to the gateway's defaults), then the keys the
chart owns: the listeners and the files of the mounted Secrets.
*/}}
{{- define "wsgateway.configYaml" -}}
{{- $config := dict }}
{{- range $key, $value := .Values.config }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value "")) (and (kindIs "slice" $value) (eq (len $value) 0))) }}
{{- $_ := set $config $key $value }}
{{- end }}
{{- end }}
{{- if and (not (hasKey $config "backend")) .Values.echoBackend.enabled }}
{{- /* A short Service name resolves in the pod's own namespace. */}}
{{- $_ := set $config "backend" (printf "dns:///%s:%d" (include "wsgateway.echoBackendName" .) (int .Values.echoBackend.port)) }}
{{- end }}
{{- $_ := set $config "listen" (printf "%s:%d" .Values.bindAddress (int .Values.ports.ws)) }}
{{- /* Not loopback: other pods must reach the admin API. The ClusterIP
       Service and the NetworkPolicy are what keep it private. */}}
{{- $_ := set $config "admin_listen" (printf "%s:%d" .Values.bindAddress (int .Values.ports.admin)) }}
{{- $_ := set $config "metrics_listen" (printf "%s:%d" .Values.bindAddress (int .Values.ports.metrics)) }}
{{- if .Values.tls.secretName }}
{{- $_ := set $config "tls_cert_file" (printf "%s/tls.crt" (include "wsgateway.tlsDir" .)) }}
{{- $_ := set $config "tls_key_file" (printf "%s/tls.key" (include "wsgateway.tlsDir" .)) }}
{{- end }}
{{- if .Values.admin.tls.secretName }}
{{- $_ := set $config "admin_tls_cert_file" (printf "%s/tls.crt" (include "wsgateway.adminTlsDir" .)) }}
{{- $_ := set $config "admin_tls_key_file" (printf "%s/tls.key" (include "wsgateway.adminTlsDir" .)) }}
{{- $ca := include "wsgateway.adminClientCASecret" . }}
{{- if $ca }}
{{- $dir := ternary (include "wsgateway.adminTlsDir" .) (include "wsgateway.adminClientCADir" .) (eq $ca .Values.admin.tls.secretName) }}
{{- $_ := set $config "admin_tls_client_ca_file" (printf "%s/%s" $dir .Values.admin.tls.clientCA.key) }}
{{- end }}
{{- end }}
{{- if .Values.admin.tokenSecret.name }}
{{- $_ := set $config "admin_token_file" (printf "%s/%s" (include "wsgateway.adminTokenDir" .) .Values.admin.tokenSecret.key) }}
{{- end }}
{{- if .Values.cluster.enabled }}
{{- /* cluster_advertise is not here: it is the pod's own IP, which only
       the pod's environment knows (WSGATEWAY_CLUSTER_ADVERTISE in the
       Deployment; the environment wins over this file). */}}
{{- $_ := set $config "cluster_redis" (include "wsgateway.clusterRedisUrl" .) }}
{{- if include "wsgateway.clusterRedisSecret" . }}
{{- $_ := set $config "cluster_redis_password_file" (printf "%s/%s" (include "wsgateway.clusterRedisDir" .) .Values.cluster.redis.passwordKey) }}
{{- end }}
{{- $_ := set $config "cluster_key_prefix" (include "wsgateway.clusterKeyPrefix" .) }}
{{- $_ := set $config "cluster_listen" (printf "%s:%d" .Values.bindAddress (int .Values.cluster.port)) }}
{{- $_ := set $config "cluster_token_file" (printf "%s/%s" (include "wsgateway.clusterTokenDir" .) .Values.cluster.token.key) }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
Cluster mode. The bundled Redis: its name (Deployment, Service and
NetworkPolicy), labels and port.
*/}}
{{- define "wsgateway.redisName" -}}
{{- include "wsgateway.suffixedName" (list . "redis") }}
{{- end }}

{{- define "wsgateway.redisSelectorLabels" -}}
{{ include "wsgateway.selectorLabels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "wsgateway.redisLabels" -}}
{{ include "wsgateway.labels" . }}
app.kubernetes.io/component: redis
{{- end }}

{{- define "wsgateway.redisPort" -}}6379{{- end }}

{{/*
True ("true") when the chart deploys its own Redis.
*/}}
{{- define "wsgateway.redisBundled" -}}
{{- if and .Values.cluster.enabled .Values.cluster.redis.bundled.enabled }}true{{- end }}
{{- end }}

{{/*
The redis:// URL the gateway's replicas share. Fails when there is no Redis
to use, or when both the bundled one and an external URL are asked for
(one of the two would be silently ignored).
*/}}
{{- define "wsgateway.clusterRedisUrl" -}}
{{- if .Values.cluster.redis.bundled.enabled }}
{{- if .Values.cluster.redis.url }}
{{- fail (printf "cluster.redis.url (%s) is for an external Redis, but cluster.redis.bundled.enabled is true: set cluster.redis.bundled.enabled=false to use it, or leave the URL empty for the bundled Redis" .Values.cluster.redis.url) }}
{{- end }}
{{- /* A short Service name resolves in the pod's own namespace. */}}
{{- printf "redis://%s:%s" (include "wsgateway.redisName" .) (include "wsgateway.redisPort" .) }}
{{- else if .Values.cluster.redis.url }}
{{- .Values.cluster.redis.url }}
{{- else }}
{{- fail "cluster.enabled is true and cluster.redis.bundled.enabled is false, but cluster.redis.url is empty: set cluster.redis.url to your Redis (redis://host:port[/db], password in cluster.redis.existingSecret), turn the bundled Redis back on, or set cluster.enabled=false to run the replicas alone" }}
{{- end }}
{{- end }}

{{/*
The Secret holding the Redis password, or "" when the Redis needs none: the
one named by cluster.redis.existingSecret, else, for the bundled Redis, the
one the chart generates.
*/}}
{{- define "wsgateway.clusterRedisSecret" -}}
{{- if .Values.cluster.redis.existingSecret }}
{{- .Values.cluster.redis.existingSecret }}
{{- else if .Values.cluster.redis.bundled.enabled }}
{{- include "wsgateway.redisName" . }}
{{- end }}
{{- end }}

{{/*
The Secret holding the replicas' shared token: cluster.token.existingSecret,
else the one the chart generates.
*/}}
{{- define "wsgateway.clusterTokenSecret" -}}
{{- default (include "wsgateway.suffixedName" (list . "cluster-token")) .Values.cluster.token.existingSecret }}
{{- end }}

{{/*
Prefix of the Redis keys: cluster.keyPrefix, else NAMESPACE/FULLNAME, which
no other release of the same Kubernetes cluster has, so that two gateways
sharing one external Redis never see each other as members.
*/}}
{{- define "wsgateway.clusterKeyPrefix" -}}
{{- default (printf "%s/%s" .Release.Namespace (include "wsgateway.fullname" .)) .Values.cluster.keyPrefix }}
{{- end }}

{{/*
A generated Secret value (base64, as in a Secret's data): the one already in
the cluster when the Secret exists (so that `helm upgrade` keeps it, and a
value edited by hand survives upgrades), else 48 random letters and digits.
`helm template` and `--dry-run` cannot look it up and always generate.
Arguments: root context, Secret name, key.
*/}}
{{- define "wsgateway.generatedSecretValue" -}}
{{- $root := index . 0 }}
{{- $name := index . 1 }}
{{- $key := index . 2 }}
{{- $existing := lookup "v1" "Secret" $root.Release.Namespace $name }}
{{- $data := dig "data" dict $existing }}
{{- if index $data $key }}
{{- index $data $key }}
{{- else }}
{{- randAlphaNum 48 | b64enc }}
{{- end }}
{{- end }}

{{/*
Fails unless the grace period covers the preStop sleep and the drain.
*/}}
{{- define "wsgateway.checkGracePeriod" -}}
{{- $drain := int (include "wsgateway.durationSeconds" (default "25s" .Values.config.drain_timeout)) }}
{{- $needed := add (int .Values.preStopSleepSeconds) $drain }}
{{- if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d) + config.drain_timeout (%ds): the kubelet would kill the gateway in the middle of its drain" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $drain) }}
{{- end }}
{{- end }}
