#!/bin/bash
# kubectl's own JSON (`--dry-run=client -o json`: Go's encoding/json of the typed object, indented)
# for objects whose request body is not protobuf or whose interest is the JSON alone: pods from
# `kubectl run` and services from `kubectl expose` (kubectl sends both as JSON), and strings that
# encoding/json escapes. kubectl asks the capture server only for discovery; nothing is sent.
# Run capture_server.py from this directory first (see README.md).
set -eu
K=${KUBECTL:?}
OUT=${OUT:?}
cd "$(dirname "$0")"
mkdir -p "$OUT"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The dry-run flags go before any "--" command, which would otherwise receive them.
json() {
  local name=$1; shift
  local args=() seen=0
  for a in "$@"; do
    if [ "$a" = "--" ] && [ $seen = 0 ]; then args+=(--dry-run=client -o json); seen=1; fi
    args+=("$a")
  done
  [ $seen = 0 ] && args+=(--dry-run=client -o json)
  "$K" "${args[@]}" > "$OUT/$name.json"
  echo "$name: $(tr -d '\n ' < "$OUT/$name.json" | head -c 80)"
}
json pod run p1 --image=nginx --port=8080 --env=A=1 --env=EMPTY= --labels=app=x,tier=y \
  --restart=Never --privileged
json pod-command run p3 --image=busybox --image-pull-policy=IfNotPresent --restart=OnFailure \
  --annotations='note=<b>&amp;</b>' --env=$'SEP=line\u2028para\u2029end' --command -- \
  sh -c 'echo "<hi>" && sleep 1'
json pod-overrides run p2 --image=busybox --restart=OnFailure --overrides='{"apiVersion":"v1","spec":{"terminationGracePeriodSeconds":0,"automountServiceAccountToken":false,"securityContext":{"runAsUser":0,"runAsNonRoot":false},"volumes":[{"name":"v","configMap":{"name":"cm1","defaultMode":420,"optional":false}},{"name":"e","emptyDir":{}},{"name":"d","downwardAPI":{"items":[{"path":"labels","fieldRef":{"fieldPath":"metadata.labels"}}]}}],"initContainers":[{"name":"init","image":"busybox","restartPolicy":"Always"}],"containers":[{"name":"p2","image":"busybox","command":["sleep","10"],"env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"cm1","key":"a"}}},{"name":"S","valueFrom":{"secretKeyRef":{"name":"s1","key":"user","optional":true}}}],"envFrom":[{"configMapRef":{"name":"cm1"}}],"ports":[{"name":"http","containerPort":8080}],"readinessProbe":{"httpGet":{"path":"/","port":"http"},"periodSeconds":5},"livenessProbe":{"tcpSocket":{"port":8080}},"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"0.25","memory":"1.5Gi"}},"volumeMounts":[{"name":"v","mountPath":"/v","readOnly":true}]}],"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule","tolerationSeconds":0}],"affinity":{"nodeAffinity":{"requiredDuringSchedulingIgnoredDuringExecution":{"nodeSelectorTerms":[{"matchExpressions":[{"key":"zone","operator":"In","values":["a","b"]}]}]}}}}}'
json configmap-escaping create configmap esc --from-literal=html='<a href="x">&</a>' \
  --from-literal=sep=$'a\u2028b\u2029c' --from-literal=control=$'tab\tnl\ncr\rbell\a\x7f' \
  --from-literal=unicode='日本語 é ✓'
json deployment-three create deployment d3 --image=nginx --image=busybox --replicas=3 --port=80
json service-nodeport-many create service nodeport svc6 --tcp=80:8080 --tcp=443:8443 --node-port=30443
"$K" create deployment web --image=nginx --port=8080 --dry-run=client -o json > "$work/web.json"
json service-expose expose -f "$work/web.json" --port=80 --target-port=8080 --name=web-svc
json service-expose-nodeport expose -f "$work/web.json" --port=80 --type=NodePort \
  --session-affinity=ClientIP --external-ip=192.0.2.10 --name=web-np
json service-expose-loadbalancer expose -f "$work/web.json" --port=443 --protocol=TCP \
  --type=LoadBalancer --load-balancer-ip=192.0.2.20 --labels=tier=edge --name=web-lb
