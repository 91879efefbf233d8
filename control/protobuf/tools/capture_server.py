#!/usr/bin/env python3
"""A fake apiserver for tools/capture_fixtures.sh: enough discovery for kubectl's generators, and
every POST/PUT body saved under cap/ (answered with 500 so kubectl stops there)."""
import http.server, json, os, re
GROUPS = {
 '': ('v1', [('configmaps','ConfigMap',1),('secrets','Secret',1),('namespaces','Namespace',0),('pods','Pod',1),('services','Service',1),('serviceaccounts','ServiceAccount',1),('resourcequotas','ResourceQuota',1),('serviceaccounts/token','TokenRequest',1)]),
 'apps': ('v1', [('deployments','Deployment',1),('deployments/scale','Scale',1),('replicasets','ReplicaSet',1),('daemonsets','DaemonSet',1),('statefulsets','StatefulSet',1)]),
 'batch': ('v1', [('jobs','Job',1),('cronjobs','CronJob',1)]),
 'rbac.authorization.k8s.io': ('v1', [('roles','Role',1),('rolebindings','RoleBinding',1),('clusterroles','ClusterRole',0),('clusterrolebindings','ClusterRoleBinding',0)]),
 'networking.k8s.io': ('v1', [('ingresses','Ingress',1),('ingressclasses','IngressClass',0)]),
 'policy': ('v1', [('poddisruptionbudgets','PodDisruptionBudget',1)]),
 'scheduling.k8s.io': ('v1', [('priorityclasses','PriorityClass',0)]),
 'autoscaling': ('v2', [('horizontalpodautoscalers','HorizontalPodAutoscaler',1)]),
}
def rl(gv, res):
    return {"kind":"APIResourceList","apiVersion":"v1","groupVersion":gv,"resources":[{"name":n,"singularName":"","namespaced":bool(ns),"kind":k,"verbs":["create","get","list","delete","patch","update"],**({"group":"autoscaling","version":"v1"} if k=="Scale" else {})} for n,k,ns in res]}
n=[0]
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self,*a): pass
    def send(self,code,obj):
        b=json.dumps(obj).encode()
        self.send_response(code); self.send_header('Content-Type','application/json'); self.send_header('Content-Length',str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self):
        p=self.path.split('?')[0]
        if p=='/api': return self.send(200,{"kind":"APIVersions","versions":["v1"],"serverAddressByClientCIDRs":[]})
        if p=='/api/v1': return self.send(200,rl('v1',GROUPS[''][1]))
        if p=='/apis': return self.send(200,{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":g,"versions":[{"groupVersion":g+'/'+v,"version":v}],"preferredVersion":{"groupVersion":g+'/'+v,"version":v}} for g,(v,_) in GROUPS.items() if g]})
        m=re.fullmatch(r'/apis/([^/]+)/([^/]+)',p)
        if m and m.group(1) in GROUPS: return self.send(200,rl(m.group(1)+'/'+m.group(2),GROUPS[m.group(1)][1]))
        if p=='/version': return self.send(200,{"major":"1","minor":"37","gitVersion":"v1.37.1"})
        self.send(404,{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404})
    def do_POST(self):
        l=int(self.headers.get('Content-Length') or 0); body=self.rfile.read(l); n[0]+=1
        name=os.environ.get('CAP','%03d'%n[0])
        with open(f'cap/{name}.bin','wb') as f: f.write(body)
        with open('cap/index.txt','a') as f: f.write(f"{name} {self.command} {self.path} {self.headers.get('Content-Type')} {len(body)}\n")
        self.send(500,{"kind":"Status","apiVersion":"v1","status":"Failure","message":"captured","code":500})
    do_PUT=do_POST
http.server.HTTPServer(('127.0.0.1',18080),H).serve_forever()
