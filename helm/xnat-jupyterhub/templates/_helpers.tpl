{{/* Labels on everything this chart renders itself (Zero to JupyterHub labels its own objects). */}}
{{- define "xnat-jupyterhub.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/*
A token for the Secret: the value given, else the one already in the Secret (so upgrades keep it, and XNAT's copy
stays valid), else a new random one. Args: dict "root" $ "key" <secret key> "given" <value from values.yaml>.
*/}}
{{- define "xnat-jupyterhub.token" -}}
{{- $existing := (lookup "v1" "Secret" .root.Release.Namespace .root.Values.secrets.name).data | default dict -}}
{{- if .given -}}
{{- if lt (len .given) 16 -}}
{{- fail (printf "secrets: the %s must be at least 16 characters (make one with `openssl rand -hex 32`)" .key) -}}
{{- end -}}
{{- .given -}}
{{- else if index $existing .key -}}
{{- index $existing .key | b64dec -}}
{{- else -}}
{{- randAlphaNum 64 -}}
{{- end -}}
{{- end -}}

{{/* "true" when the console's service is asked for (JH_CONSOLE_TOKEN_FILE in the hub's environment), else "". */}}
{{- define "xnat-jupyterhub.consoleEnabled" -}}
{{- if hasKey (.Values.jupyterhub.hub.extraEnv | default dict) "JH_CONSOLE_TOKEN_FILE" -}}true{{- end -}}
{{- end -}}

{{/* The hub's base URL with one trailing slash. */}}
{{- define "xnat-jupyterhub.baseUrl" -}}
{{- $base := .Values.jupyterhub.hub.baseUrl | default "/" | trimSuffix "/" -}}
{{- printf "%s/" $base -}}
{{- end -}}

{{/*
Settings that must agree across the two charts (the Zero to JupyterHub chart cannot read our values), checked at
render time so that a mismatch fails `helm install` with a message instead of a hub that cannot start.
*/}}
{{- define "xnat-jupyterhub.checks" -}}
{{- $hub := .Values.jupyterhub.hub -}}
{{- if not ($hub.image | default dict).name -}}
{{- fail "jupyterhub.hub.image.name: no hub image is published; build helm/xnat-jupyterhub/image/Dockerfile, push it to a registry your cluster pulls from, and set jupyterhub.hub.image.name (and .tag)" -}}
{{- end -}}
{{- if and .Values.secrets.consoleToken (not (include "xnat-jupyterhub.consoleEnabled" .)) -}}
{{- fail "secrets.consoleToken is set but the console's service is off: set jupyterhub.hub.extraEnv.JH_CONSOLE_TOKEN_FILE=/etc/xnat-jupyterhub/secrets/console-token to ask for it" -}}
{{- end -}}
{{- $secret := .Values.secrets.name -}}
{{- $mounted := false -}}
{{- range $hub.extraVolumes -}}
{{- if and .secret (eq (.secret.secretName | default "") $secret) -}}{{- $mounted = true -}}{{- end -}}
{{- end -}}
{{- if not $mounted -}}
{{- fail (printf "jupyterhub.hub.extraVolumes must mount the Secret %q (secrets.name)" $secret) -}}
{{- end -}}
{{- $pg := (($hub.extraEnv | default dict).PGPASSWORD | default dict) -}}
{{- if and (kindIs "map" $pg) $pg.valueFrom -}}
{{- if ne $pg.valueFrom.secretKeyRef.name $secret -}}
{{- fail (printf "jupyterhub.hub.extraEnv.PGPASSWORD must read the Secret %q (secrets.name)" $secret) -}}
{{- end -}}
{{- end -}}
{{- $db := $hub.db | default dict -}}
{{- if not (has ($db.type | default "sqlite-pvc") (list "sqlite-pvc" "postgres")) -}}
{{- fail (printf "jupyterhub.hub.db.type must be sqlite-pvc or postgres, got %q" $db.type) -}}
{{- end -}}
{{- if and (eq $db.type "postgres") (not $db.url) -}}
{{- fail "jupyterhub.hub.db.type is postgres: set jupyterhub.hub.db.url (postgresql+psycopg2://USER@HOST:5432/DB)" -}}
{{- end -}}
{{- end -}}
