#!/bin/bash
# Runs kubectl commands against the capture server; for each, stores the protobuf body kubectl
# sent (NAME.bin) and kubectl's own client-side JSON of the same object (NAME.json).
set -u
K=${KUBECTL:?}
cd "$(dirname "$0")"  # bin.dat lives here; run capture_server.py from this directory too
OUT=${OUT:?}
mkdir -p "$OUT"
cap() {
  local name=$1; shift
  local before; before=$(ls cap/*.bin 2>/dev/null | wc -l)
  "$K" "$@" >/dev/null 2>&1
  local newest; newest=$(ls -t cap/*.bin 2>/dev/null | head -1)
  if [ "$(ls cap/*.bin 2>/dev/null | wc -l)" = "$before" ]; then echo "NO CAPTURE: $name"; return; fi
  mv "$newest" "$OUT/$name.bin"
  # kubectl's own JSON of the same object; the flags go before any "--" command.
  local args=() seen=0
  for a in "$@"; do
    if [ "$a" = "--" ] && [ $seen = 0 ]; then args+=(--dry-run=client -o json); seen=1; fi
    args+=("$a")
  done
  [ $seen = 0 ] && args+=(--dry-run=client -o json)
  if ! "$K" "${args[@]}" > "$OUT/$name.json" 2>/dev/null; then rm -f "$OUT/$name.json"; echo "no dry-run json: $name"; fi
  echo "$name: $(head -c 200 "$OUT/$name.json" 2>/dev/null | tr -d '\n ' | head -c 80)"
}
cap configmap create configmap cm1 --from-literal=a=b --from-literal=empty= --from-file=bin=bin.dat
cap secret create secret generic s1 --from-literal=user=admin --from-literal=empty= --type=Opaque
cap secret-docker create secret docker-registry reg --docker-server=r.example.com --docker-username=u --docker-password=p
cap deployment create deployment d1 --image=nginx --replicas=0 --port=80
cap deployment-two create deployment d2 --image=nginx --image=busybox
cap namespace create namespace ns1
cap pod run p1 --image=nginx --port=8080 --env=A=1 --env=EMPTY= --labels=app=x,tier=y --restart=Never --privileged
cap pod-overrides run p2 --image=busybox --restart=OnFailure --overrides='{"apiVersion":"v1","spec":{"terminationGracePeriodSeconds":0,"automountServiceAccountToken":false,"securityContext":{"runAsUser":0,"runAsNonRoot":false},"volumes":[{"name":"v","configMap":{"name":"cm1","defaultMode":420,"optional":false}},{"name":"e","emptyDir":{}}],"containers":[{"name":"p2","image":"busybox","command":["sleep","10"],"env":[{"name":"X","valueFrom":{"configMapKeyRef":{"name":"cm1","key":"a"}}},{"name":"S","valueFrom":{"secretKeyRef":{"name":"s1","key":"user","optional":true}}}],"envFrom":[{"configMapRef":{"name":"cm1"}}],"ports":[{"name":"http","containerPort":8080}],"readinessProbe":{"httpGet":{"path":"/","port":"http"},"periodSeconds":5},"livenessProbe":{"tcpSocket":{"port":8080}},"resources":{"limits":{"cpu":"500m","memory":"128Mi"},"requests":{"cpu":"0.25","memory":"1.5Gi"}},"volumeMounts":[{"name":"v","mountPath":"/v","readOnly":true}]}],"tolerations":[{"key":"k","operator":"Exists","effect":"NoSchedule","tolerationSeconds":0}]}}'
cap service-clusterip create service clusterip svc1 --tcp=80:8080 --tcp=443:https
cap service-nodeport create service nodeport svc2 --tcp=80:8080 --node-port=30080
cap service-nodeport-auto create service nodeport svc2b --tcp=80
cap service-loadbalancer create service loadbalancer svc3 --tcp=80:8080
cap service-externalname create service externalname svc4 --external-name=x.example.com
cap service-headless create service clusterip svc5 --clusterip=None
cap job create job j1 --image=busybox -- echo hi
cap cronjob create cronjob cj1 --image=busybox --schedule='*/1 * * * *' --restart=OnFailure -- echo hi
cap role create role r1 --verb=get,list --resource=pods,deployments.apps --resource-name=x
cap rolebinding create rolebinding rb1 --role=r1 --user=alice --serviceaccount=default:sa1 --group=g
cap clusterrole create clusterrole cr1 --verb=get --non-resource-url=/healthz
cap clusterrole-aggregate create clusterrole cr2 --aggregation-rule=rbac.example.com/aggregate=true
cap clusterrolebinding create clusterrolebinding crb1 --clusterrole=cr1 --user=bob
cap quota create quota q1 --hard=cpu=1,memory=1Gi,pods=10 --scopes=BestEffort
cap priorityclass-zero create priorityclass pc1 --value=0 --description=x --preemption-policy=Never
cap priorityclass create priorityclass pc2 --value=1000 --global-default=true
cap pdb-percent create poddisruptionbudget pdb1 --selector=app=x --min-available=50%
cap pdb-int create poddisruptionbudget pdb2 --selector=app=x --max-unavailable=0
cap ingress create ingress ing1 --class=nginx --rule='foo.com/bar*=svc1:8080,tls=my-cert' --rule='/path=svc2:http' --default-backend=defsvc:http --annotation=a=b
cap serviceaccount create serviceaccount sa1
