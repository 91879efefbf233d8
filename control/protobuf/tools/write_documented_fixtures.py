#!/usr/bin/env python3
"""Writes tests/fixtures/documented/: bodies from Kubernetes' documentation, completed where the page
elides parts ("..."), each with a .source file (the page, the Go type when the body has no kind, and
what was completed). Keys are written in the order given here, which is the Go declaration order;
strings get Go's HTML-safe escapes. The JSON encoder does not write these: they are its spec.

Usage: write_documented_fixtures.py tests/fixtures/documented
"""
import json, os, sys
D = sys.argv[1]
def go(text):
    return (text.replace('&', '\\u0026').replace('<', '\\u003c').replace('>', '\\u003e')
            .replace('\u2028', '\\u2028').replace('\u2029', '\\u2029'))
def fixture(name, source, note, body, go_type=None):
    with open(os.path.join(D, name + '.json'), 'w') as f:
        f.write(go(json.dumps(body, indent=4, ensure_ascii=False)) + '\n')
    with open(os.path.join(D, name + '.source'), 'w') as f:
        f.write(f'source: {source}\n')
        if go_type:
            f.write(f'type: {go_type}\n')
        f.write(f'note: {note}\n')
META = 'k8s.io/apimachinery/pkg/apis/meta/v1'
CONV = 'https://github.com/kubernetes/community/blob/master/contributors/devel/sig-architecture/api-conventions.md'
CONCEPTS = 'https://kubernetes.io/docs/reference/using-api/api-concepts/'

fixture('status-not-found', CONV + '#response-status-kind',
  'The 404 body of the example, as printed there (Go order, ListMeta "metadata" always written).',
  {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
   "message": "pods \"grafana\" not found", "reason": "NotFound",
   "details": {"name": "grafana", "kind": "pods"}, "code": 404})

fixture('status-invalid', CONV + '#http-status-codes',
  'A 422 Invalid Status with StatusDetails.causes (StatusCause is reason, message, field) for the '
  'field error the conventions describe; message text as kube-apiserver words field errors.',
  {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
   "message": "Pod \"web\" is invalid: spec.containers[0].image: Required value",
   "reason": "Invalid",
   "details": {"name": "web", "kind": "Pod", "causes": [
       {"reason": "FieldValueRequired", "message": "Required value", "field": "spec.containers[0].image"}]},
   "code": 422})

fixture('status-expired', CONCEPTS + '#retrieving-large-results-sets-in-chunks',
  'The 410 ResourceExpired answer to a stale continue token "together with a continue token" '
  '(ListOptions.continue); the token goes in the Status\'s ListMeta.',
  {"kind": "Status", "apiVersion": "v1", "metadata": {"continue": "ENCODED_CONTINUE_TOKEN_2"},
   "status": "Failure",
   "message": "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
   "reason": "Expired", "code": 410})

pod = {"kind": "Pod", "apiVersion": "v1",
       "metadata": {"name": "web-0", "namespace": "test", "uid": "f2b4c6d8-0000-4000-8000-000000000001",
                    "resourceVersion": "10596", "creationTimestamp": "2026-01-02T03:04:05Z",
                    "labels": {"app": "web"}},
       "spec": {"containers": [{"name": "web", "image": "nginx", "resources": {},
                                "terminationMessagePath": "/dev/termination-log",
                                "terminationMessagePolicy": "File", "imagePullPolicy": "Always"}],
                "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                "dnsPolicy": "ClusterFirst", "serviceAccountName": "default",
                "securityContext": {}, "schedulerName": "default-scheduler",
                "enableServiceLinks": True, "preemptionPolicy": "PreemptLowerPriority"},
       "status": {"phase": "Pending", "qosClass": "BestEffort"}}
fixture('watch-added', CONCEPTS + '#efficient-detection-of-changes',
  'The ADDED event of the watch example; the page elides the Pod ("..."), completed with a '
  'defaulted pending Pod. A watch event is metav1.WatchEvent, its object a RawExtension holding '
  'the typed object.',
  {"type": "ADDED", "object": pod}, META + '.WatchEvent')

fixture('watch-bookmark', CONCEPTS + '#watch-bookmarks',
  'The BOOKMARK event of the example. The page shows only the resourceVersion; kube-apiserver '
  'encodes the typed empty Pod, so its zero spec (containers: null) and status ({}) follow.',
  {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": "12746"},
                                  "spec": {"containers": None}, "status": {}}},
  META + '.WatchEvent')

fixture('watch-initial-events-end', CONCEPTS + '#streaming-lists',
  'The bookmark that ends the initial events of a streaming list (sendInitialEvents=true), marked '
  'with the k8s.io/initial-events-end annotation; typed empty Pod as in watch-bookmark.',
  {"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                  "metadata": {"resourceVersion": "13000",
                                               "annotations": {"k8s.io/initial-events-end": "true"}},
                                  "spec": {"containers": None}, "status": {}}},
  META + '.WatchEvent')

fixture('podlist-chunk', CONCEPTS + '#retrieving-large-results-sets-in-chunks',
  'The first chunk of the example (limit=500): ListMeta is resourceVersion, continue, '
  'remainingItemCount in that order; items elided on the page, one Pod given here.',
  {"kind": "PodList", "apiVersion": "v1",
   "metadata": {"resourceVersion": "10245", "continue": "ENCODED_CONTINUE_TOKEN", "remainingItemCount": 753},
   "items": [pod]})

fixture('podlist-empty', CONCEPTS + '#efficient-detection-of-changes',
  'The list of the example with no pods: items is not omitempty, so an empty list is [] '
  '(kube-apiserver never sends a nil items).',
  {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "10245"}, "items": []})

fixture('list-mixed', CONCEPTS + '#collections',
  'A v1 List of mixed kinds (items are RawExtensions, each written as its own kind). The page\'s '
  'example is kubectl\'s unstructured List (sorted keys, "resourceVersion": ""); this is the typed '
  'core/v1.List, where the empty resourceVersion is omitempty and so left out.',
  {"kind": "List", "apiVersion": "v1", "metadata": {},
   "items": [
       {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "cfg", "namespace": "default"},
        "data": {"k": "v"}},
       {"kind": "Service", "apiVersion": "v1", "metadata": {"name": "svc", "namespace": "default"},
        "spec": {"ports": [{"protocol": "TCP", "port": 80, "targetPort": 80}], "type": "ClusterIP"},
        "status": {"loadBalancer": {}}}]})

def col(name, typ, fmt, desc, prio):
    return {"name": name, "type": typ, "format": fmt, "description": desc, "priority": prio}
partial = lambda name, rv: {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
    "metadata": {"name": name, "namespace": "default", "uid": "a1b2c3d4-0000-4000-8000-00000000000" + rv[-1],
                 "resourceVersion": rv, "creationTimestamp": "2026-01-02T03:04:05Z", "labels": {"app": "web"}}}
fixture('table-pods', CONCEPTS + '#receiving-resources-as-tables',
  'A Table of pods as the example requests it (Accept: application/json;as=Table;g=meta.k8s.io;v=v1); '
  'the page elides columns and rows: the pod columns kube-apiserver prints (every '
  'TableColumnDefinition field is written, format "" included), cells as []interface{} '
  '(strings and an integer; "<none>" escaped as Go does), objects as PartialObjectMetadata (the '
  'default includeObject=Metadata).',
  {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {"resourceVersion": "10245"},
   "columnDefinitions": [
       col("Name", "string", "name", "Name must be unique within a namespace.", 0),
       col("Ready", "string", "", "The aggregate readiness state of this pod for accepting traffic.", 0),
       col("Status", "string", "", "The aggregate status of the containers in this pod.", 0),
       col("Restarts", "string", "", "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.", 0),
       col("Age", "string", "", "CreationTimestamp is a timestamp representing the server time when this object was created.", 0),
       col("IP", "string", "", "The IP address assigned to the pod.", 1),
       col("Node", "string", "", "The name of the node the pod is scheduled to.", 1),
       col("Nominated Node", "string", "", "The node the pod is nominated to run on.", 1),
       col("Readiness Gates", "string", "", "The readiness gates of the pod.", 1)],
   "rows": [
       {"cells": ["web-0", "1/1", "Running", 0, "2h", "10.244.0.5", "node-1", "<none>", "<none>"],
        "object": partial("web-0", "10241")},
       {"cells": ["web-1", "0/1", "Pending", 2, "5m", "<none>", "<none>", "<none>", "<none>"],
        "conditions": [{"type": "Completed", "status": "False", "reason": "Pending"}],
        "object": partial("web-1", "10242")}]})

fixture('partialobjectmetadatalist', CONCEPTS + '#metadata-only-fetches',
  'A metadata-only list (Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1); '
  'the page elides the items: one with owner references, finalizers and managed fields (ObjectMeta '
  'order; OwnerReference is apiVersion, kind, name, uid, controller, blockOwnerDeletion).',
  {"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
   "metadata": {"resourceVersion": "10245"},
   "items": [{"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
              "metadata": {"name": "web-7d4b9c-x2x9z", "generateName": "web-7d4b9c-", "namespace": "default",
                           "uid": "c0ffee00-0000-4000-8000-000000000002", "resourceVersion": "10240",
                           "generation": 1, "creationTimestamp": "2026-01-02T03:04:05Z",
                           "labels": {"app": "web", "pod-template-hash": "7d4b9c"},
                           "annotations": {"note": "a <b> & c"},
                           "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d4b9c",
                                                "uid": "c0ffee00-0000-4000-8000-000000000001",
                                                "controller": True, "blockOwnerDeletion": True}],
                           "finalizers": ["example.com/cleanup"],
                           "managedFields": [{"manager": "kube-controller-manager", "operation": "Update",
                                              "apiVersion": "v1", "time": "2026-01-02T03:04:05Z",
                                              "fieldsType": "FieldsV1",
                                              "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}}]}}]})

fixture('apiversions', 'https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api',
  'GET /api (unaggregated discovery): kube-apiserver writes APIVersions with kind only; '
  'serverAddressByClientCIDRs is not omitempty.',
  {"kind": "APIVersions", "versions": ["v1"],
   "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "192.0.2.1:6443"}]})

fixture('apigrouplist', 'https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api',
  'GET /apis (unaggregated discovery): APIGroup is name, versions, preferredVersion.',
  {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
      {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
       "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}},
      {"name": "autoscaling", "versions": [{"groupVersion": "autoscaling/v2", "version": "v2"},
                                           {"groupVersion": "autoscaling/v1", "version": "v1"}],
       "preferredVersion": {"groupVersion": "autoscaling/v2", "version": "v2"}}]})

fixture('apiresourcelist', 'https://kubernetes.io/docs/concepts/overview/kubernetes-api/#discovery-api',
  'GET /apis/apps/v1: APIResource is name, singularName, namespaced, group, version, kind, verbs, '
  'shortNames, categories, storageVersionHash; a subresource has singularName "".',
  {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "apps/v1", "resources": [
      {"name": "deployments", "singularName": "deployment", "namespaced": True, "kind": "Deployment",
       "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
       "shortNames": ["deploy"], "categories": ["all"], "storageVersionHash": "8aSe+NMegvE="},
      {"name": "deployments/scale", "singularName": "", "namespaced": True, "group": "autoscaling",
       "version": "v1", "kind": "Scale", "verbs": ["get", "patch", "update"]},
      {"name": "deployments/status", "singularName": "", "namespaced": True, "kind": "Deployment",
       "verbs": ["get", "patch", "update"]}]})

fixture('deleteoptions-foreground', 'https://kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/',
  'The request body of the foreground cascading deletion example, as given there.',
  {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Foreground"})

fixture('deleteoptions-now', 'https://kubernetes.io/docs/reference/kubernetes-api/common-definitions/delete-options/',
  'gracePeriodSeconds 0 (delete now) and preconditions: pointers, so their zero and empty values are kept.',
  {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
   "preconditions": {"uid": "f2b4c6d8-0000-4000-8000-000000000001", "resourceVersion": ""},
   "propagationPolicy": "Background", "dryRun": ["All"]})

fixture('event-core', 'https://kubernetes.io/docs/reference/kubernetes-api/cluster-resources/event-v1/',
  'An Event written by an events.k8s.io recorder, read as core/v1: firstTimestamp and lastTimestamp '
  'are zero metav1.Time (omitempty never omits a struct: null), eventTime a MicroTime, '
  'reportingComponent/reportingInstance not omitempty.',
  {"kind": "Event", "apiVersion": "v1",
   "metadata": {"name": "web-0.18a1b2c3d4e5f601", "namespace": "test",
                "uid": "e0e0e0e0-0000-4000-8000-000000000003", "resourceVersion": "10600",
                "creationTimestamp": "2026-01-02T03:04:06Z"},
   "involvedObject": {"kind": "Pod", "namespace": "test", "name": "web-0",
                      "uid": "f2b4c6d8-0000-4000-8000-000000000001", "apiVersion": "v1"},
   "reason": "Scheduled", "message": "Successfully assigned test/web-0 to node-1",
   "source": {}, "firstTimestamp": None, "lastTimestamp": None, "type": "Normal",
   "eventTime": "2026-01-02T03:04:06.123456Z", "action": "Binding",
   "reportingComponent": "default-scheduler", "reportingInstance": ""})
