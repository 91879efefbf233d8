#!/usr/bin/env python3
"""Generates src/managed_fields/builtin_table.rs: the server-side apply type table of every
built-in kind skiff serves.

Three sources, in this order of authority for each fact:

* kubectl's Go API types (the dump of tools/../../protobuf/tools/go_types.py): which types and
  fields exist, their JSON names, whether a field is a struct, map, list or scalar, and the
  `patchStrategy` / `patchMergeKey` struct tags. They are the version skiff serves, so they
  decide the field set.
* k8s-openapi's generated `DeepMerge` impls (one Kubernetes minor behind): the
  `x-kubernetes-list-type`, `-list-map-keys` and `-map-type` of Kubernetes' OpenAPI, which come
  from the `+listType`, `+listMapKey` and `+mapType` markers of the types.go files. Where a
  field has them, they beat the struct tags, as in Kubernetes.
* CORRECTIONS below, from Kubernetes' own markers, for what k8s-openapi does not carry:
  `+structType=atomic`, and the list map keys it reduces to the patch merge key.

A list none of them types follows kube-openapi's schemaconv rule: `patchStrategy` "merge" (or
"merge,retainKeys") with a `patchMergeKey` is an associative list keyed by it, "merge" without
one is a set, anything else (no tag, "retainKeys", "replace") is atomic. A map is granular
unless marked atomic.

Usage: gen_builtin_schema.py TYPES.json K8S_OPENAPI_SRC KINDS_RS KUBECTL_VERSION > OUT.rs

K8S_OPENAPI_SRC is k8s-openapi's version folder (`.../k8s-openapi-0.29.0/src/v1_35`), KINDS_RS
the apiserver's `registry/kinds.rs` (the served kinds). Where the sources disagree is reported
on stderr.
"""
import json, os, re, sys

types_path, openapi_dir, kinds_rs, version = sys.argv[1:5]
types = json.load(open(types_path))

META = 'k8s.io/apimachinery/pkg/apis/meta/v1'

# Types skiff serves that kubectl does not link (kube-aggregator's APIService), written as
# go_types.py would dump them from kube-aggregator's pkg/apis/apiregistration/v1/types.go.
AGGREGATOR = 'k8s.io/kube-aggregator/pkg/apis/apiregistration/v1'


def _field(go, tag, ty, embedded=False):
    return {'embedded': embedded, 'go': go, 'tag': tag, 'type': ty}


def _t(kind, name=None, e=None):
    out = {'k': kind}
    if name:
        out['name'] = name
    if e:
        out['e'] = e
    return out


_STR, _I32, _BOOL = _t('string', 'string'), _t('int32', 'int32'), _t('bool', 'bool')
HAND_TYPES = {
    f'{AGGREGATOR}.APIService': [
        _field('TypeMeta', 'json:",inline"', _t('struct', f'{META}.TypeMeta'), True),
        _field('ObjectMeta', 'json:"metadata,omitempty"', _t('struct', f'{META}.ObjectMeta'), True),
        _field('Spec', 'json:"spec,omitempty"', _t('struct', f'{AGGREGATOR}.APIServiceSpec')),
        _field('Status', 'json:"status,omitempty"', _t('struct', f'{AGGREGATOR}.APIServiceStatus')),
    ],
    f'{AGGREGATOR}.APIServiceSpec': [
        _field('Service', 'json:"service,omitempty"',
               _t('ptr', e=_t('struct', f'{AGGREGATOR}.ServiceReference'))),
        _field('Group', 'json:"group,omitempty"', _STR),
        _field('Version', 'json:"version,omitempty"', _STR),
        _field('InsecureSkipTLSVerify', 'json:"insecureSkipTLSVerify,omitempty"', _BOOL),
        _field('CABundle', 'json:"caBundle,omitempty"', _t('slice', e=_t('uint8', 'uint8'))),
        _field('GroupPriorityMinimum', 'json:"groupPriorityMinimum"', _I32),
        _field('VersionPriority', 'json:"versionPriority"', _I32),
    ],
    f'{AGGREGATOR}.ServiceReference': [
        _field('Namespace', 'json:"namespace,omitempty"', _STR),
        _field('Name', 'json:"name,omitempty"', _STR),
        _field('Port', 'json:"port,omitempty"', _t('ptr', e=_I32)),
    ],
    f'{AGGREGATOR}.APIServiceStatus': [
        # +listType=map +listMapKey=type
        _field('Conditions', 'json:"conditions,omitempty" patchStrategy:"merge" patchMergeKey:"type"',
               _t('slice', e=_t('struct', f'{AGGREGATOR}.APIServiceCondition'))),
    ],
    f'{AGGREGATOR}.APIServiceCondition': [
        _field('Type', 'json:"type"', _STR),
        _field('Status', 'json:"status"', _STR),
        _field('LastTransitionTime', 'json:"lastTransitionTime,omitempty"',
               _t('struct', f'{META}.Time')),
        _field('Reason', 'json:"reason,omitempty"', _STR),
        _field('Message', 'json:"message,omitempty"', _STR),
    ],
}
for _name, _fields in HAND_TYPES.items():
    types.setdefault(_name, _fields)

# Go types whose JSON form is one value: owned as a whole, never looked into.
SCALAR_STRUCTS = {
    META + '.Time', META + '.MicroTime', META + '.Duration', META + '.FieldsV1',
    'k8s.io/apimachinery/pkg/api/resource.Quantity',
    'k8s.io/apimachinery/pkg/util/intstr.IntOrString',
}
# Go types that hold any JSON.
UNTYPED_STRUCTS = {
    'k8s.io/apimachinery/pkg/runtime.RawExtension',
    'k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1.JSON',
}
# Go package directory under k8s.io/api -> API group (as control/protobuf/tools/gen_schema.py).
GROUPS = {
    'apps': 'apps', 'autoscaling': 'autoscaling', 'batch': 'batch',
    'certificates': 'certificates.k8s.io', 'coordination': 'coordination.k8s.io', 'core': '',
    'discovery': 'discovery.k8s.io', 'events': 'events.k8s.io',
    'networking': 'networking.k8s.io', 'policy': 'policy', 'rbac': 'rbac.authorization.k8s.io',
    'scheduling': 'scheduling.k8s.io', 'storage': 'storage.k8s.io',
    'admissionregistration': 'admissionregistration.k8s.io',
    'apiregistration': 'apiregistration.k8s.io',
}
# Kinds served beside kinds.rs's table: PodTemplate (a strategic-merge-patch root in patch.rs),
# the /scale subresource's body, and groups being added to kinds.rs.
EXTRA_KINDS = [
    ('core', 'v1', 'PodTemplate'),
    ('autoscaling', 'v1', 'Scale'),
    ('certificates', 'v1', 'CertificateSigningRequest'),
]

# Facts the machine sources lack, each from the Kubernetes marker named beside it (in
# staging/src/k8s.io/api/<group>/<version>/types.go, or apimachinery's meta/v1/types.go), checked
# against the schema Kubernetes derives from its OpenAPI (client-go's
# applyconfigurations/internal/internal.go).
CORE = 'k8s.io/api/core/v1.'
ATOMIC = '+structType=atomic'
ATOMIC_STRUCTS = {
    CORE + 'ConfigMapKeySelector': ATOMIC,
    CORE + 'EndpointAddress': ATOMIC,
    CORE + 'EndpointPort': ATOMIC,
    CORE + 'FileKeySelector': ATOMIC,
    CORE + 'LocalObjectReference': ATOMIC,
    CORE + 'NodeSelector': ATOMIC,
    CORE + 'NodeSelectorTerm': ATOMIC,
    CORE + 'ObjectFieldSelector': ATOMIC,
    CORE + 'ObjectReference': ATOMIC,
    CORE + 'ResourceFieldSelector': ATOMIC,
    CORE + 'ScopeSelector': ATOMIC,
    CORE + 'SecretKeySelector': ATOMIC,
    CORE + 'SecretReference': ATOMIC,
    CORE + 'TopologySelectorTerm': ATOMIC,
    CORE + 'TypedLocalObjectReference': ATOMIC,
    'k8s.io/api/discovery/v1.EndpointPort': ATOMIC,
    'k8s.io/api/networking/v1.ServiceBackendPort': ATOMIC,
    'k8s.io/api/rbac/v1.RoleRef': ATOMIC,
    'k8s.io/api/rbac/v1.Subject': ATOMIC,
    META + '.LabelSelector': ATOMIC,
    META + '.OwnerReference': ATOMIC,
}
# (Go type, JSON field) -> struct reference granular although its type is atomic.
STRUCT_FIELD_CORRECTIONS = {
    (CORE + 'PersistentVolumeSpec', 'claimRef'): ('granular', '+structType=granular'),
}
# (Go type, JSON field) -> (('map', keys) | ('set',) | ('atomic',), marker). k8s-openapi keys a
# list by its patch merge key whenever it has one, even where the list markers say otherwise.
LIST_CORRECTIONS = {
    (CORE + 'Container', 'ports'):
        (('map', ['containerPort', 'protocol']), '+listType=map +listMapKey=containerPort +listMapKey=protocol'),
    (CORE + 'EphemeralContainer', 'ports'):
        (('map', ['containerPort', 'protocol']), '+listType=map +listMapKey=containerPort +listMapKey=protocol'),
    (CORE + 'ServiceSpec', 'ports'):
        (('map', ['port', 'protocol']), '+listType=map +listMapKey=port +listMapKey=protocol'),
    (CORE + 'PodSpec', 'topologySpreadConstraints'):
        (('map', ['topologyKey', 'whenUnsatisfiable']),
         '+listType=map +listMapKey=topologyKey +listMapKey=whenUnsatisfiable'),
    (CORE + 'PodStatus', 'hostIPs'): (('atomic',), '+listType=atomic'),
    ('k8s.io/api/batch/v1.JobStatus', 'conditions'): (('atomic',), '+listType=atomic'),
    # Newer than k8s-openapi, and without (or beyond) patch tags.
    (CORE + 'PodStatus', 'volumeHealth'): (('map', ['name']), '+listType=map +listMapKey=name'),
    (CORE + 'PodVolumeHealth', 'healthConditions'):
        (('map', ['status', 'reason']), '+listType=map +listMapKey=status +listMapKey=reason'),
    (CORE + 'VolumeHealthStatus', 'healthConditions'):
        (('map', ['status', 'reason']), '+listType=map +listMapKey=status +listMapKey=reason'),
    (CORE + 'NodePodPreemptionPolicy', 'disableResizePreemption'): (('set',), '+listType=set'),
    (CORE + 'NodeAllocatableResourceClaimStatus', 'containers'): (('set',), '+listType=set'),
    # From the VolumeBindMountOptions KEP's API: the types.go line was not readable here.
    (CORE + 'VolumeMount', 'bindMountOptions'): (('set',), '+listType=set'),
}
# (Go type, JSON field) -> ('atomic' | 'granular', marker).
MAP_CORRECTIONS = {}
# (Go type, JSON field) of a list map key -> (default, marker): structured-merge-diff fills a
# key an item omits from the schema's default (kube-openapi's schemaconv copies OpenAPI's
# `default`, from the `+default=` marker). Every list map key of the served types was checked
# against Kubernetes' OpenAPI (api/openapi-spec): these are the only ones with a default. The
# generator prints every key on stderr (`key:` lines) so that a new one is seen.
KEY_DEFAULTS = {
    (CORE + 'ContainerPort', 'protocol'): ('TCP', '+default="TCP"'),
    (CORE + 'ServicePort', 'protocol'): ('TCP', '+default="TCP"'),
}


def warn(msg):
    print(msg, file=sys.stderr)


def tags(tag):
    return dict(re.findall(r'(\w+):"([^"]*)"', tag))


def openapi_name(go_name):
    """`k8s.io/api/core/v1.Pod` -> `io.k8s.api.core.v1.Pod`, the name Kubernetes' OpenAPI (and
    so its managed-fields type converter) gives the type."""
    pkg, name = go_name.rsplit('.', 1)
    host, _, path = pkg.partition('/')
    rev = '.'.join(reversed(host.split('.')))
    return '.'.join([rev] + path.split('/') + [name])


# --- the served kinds -------------------------------------------------------------------------

def served_kinds():
    src = open(kinds_rs).read()
    # Every `use k8s_openapi::...` import: `api::{apps::v1 as apps, ...}`,
    # `api::admissionregistration::v1 as admissionregistration`,
    # `kube_aggregator::pkg::apis::apiregistration::v1 as apiregistration`.
    alias = {}
    for use in re.findall(r'use k8s_openapi::(.*?);', src, re.S):
        for group_dir, ver, name in re.findall(r'(\w+)::(v\w+) as (\w+)', use):
            alias[name] = (group_dir, ver)
    out = []
    for mod, kind in re.findall(r'register!\(\s*r,\s*(\w+)::(\w+),', src):
        group_dir, ver = alias[mod]
        out.append((group_dir, ver, kind))
    if not out:
        sys.exit(f'{kinds_rs}: no register! lines found')
    return out + [k for k in EXTRA_KINDS if k not in out]


roots = []
for group_dir, ver, kind in served_kinds():
    go = (f'{AGGREGATOR}.{kind}' if group_dir == 'apiregistration'
          else f'k8s.io/api/{group_dir}/{ver}.{kind}')
    if go not in types:
        sys.exit(f'served kind {go} is not in the Go types')
    group = GROUPS[group_dir]
    roots.append((f'{group}/{ver}' if group else ver, kind, go))
roots.sort()


# --- k8s-openapi's merge strategies -----------------------------------------------------------

def read_openapi(root):
    """Go type name -> {json field: strategy}, strategy one of ('atomic',), ('set',),
    ('map', [keys]) for lists and ('map-atomic',), ('map-granular',) for maps."""
    files = {}
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith('.rs') and n != 'mod.rs':
                files[os.path.join(dirpath, n)] = open(os.path.join(dirpath, n)).read()
    structs = {}  # rust path (crate::api::core::v1::Container) -> (go name, text)
    for path, text in files.items():
        m = re.search(r'^pub struct (\w+)', text, re.M)
        if not m:
            continue
        rel = os.path.relpath(os.path.dirname(path), root).split(os.sep)
        go = 'k8s.io/' + '/'.join(rel) + '.' + m.group(1)
        structs['crate::' + '::'.join(rel) + '::' + m.group(1)] = (go, text)
    json_names = {}  # go name -> {rust field: json}
    field_types = {}  # go name -> {rust field: rust item path}
    for rust, (go, text) in structs.items():
        json_names[go] = dict((r, j) for j, r in re.findall(r'"([^"]+)" => Field::Key_(\w+),', text))
        field_types[go] = dict(re.findall(r'^    pub (\w+): .*?(crate::[\w:]+)', text, re.M))
    out = {}
    for rust, (go, text) in structs.items():
        body = re.search(r'impl crate::DeepMerge for \w+ \{(.*?)\n\}', text, re.S)
        if not body:
            continue
        got = {}
        # One call per field; a list map's key closures lie between its call and the next.
        calls = body.group(1).split('crate::merge_strategies::')[1:]
        last = None
        for call in calls:
            m = re.match(r'(list|map)::(\w+)\(\s*&mut self\.(\w+),', call)
            inner = re.match(r'(list|map)::(\w+)\(current_item, other_item\)', call)
            if inner and last and got[last][0].startswith('map-'):
                # The strategy of a map's values (a map of lists).
                got[last] = (got[last][0], (inner.group(2),) if inner.group(1) == 'list' else ('map-' + inner.group(2),))
                continue
            if not m:
                sys.exit(f'k8s-openapi {go}: unread merge strategy {call[:60]!r}')
            kind, how, field = m.groups()
            j = json_names[go].get(field)
            if j is None:
                sys.exit(f'k8s-openapi {go}.{field}: no JSON name')
            last = j
            if kind == 'map':
                got[j] = ('map-' + how, None)
            elif how == 'map':
                item = structs[field_types[go][field]][0]
                keys = []
                for path in re.findall(r'\|lhs, rhs\| lhs\.([\w.]+) ==', call):
                    if '.' in path:
                        # A key inside a nested object (metadata.name): not a list map key
                        # Kubernetes can express; k8s-openapi's own choice.
                        keys = None
                        break
                    keys.append(json_names[item][path])
                got[j] = ('map', keys) if keys else ('k8s-openapi-only', call.split(')')[0])
            else:
                got[j] = (how,)
        out[go] = got
    return out


openapi = read_openapi(openapi_dir)


# --- the table --------------------------------------------------------------------------------

def struct_fields(go):
    """The JSON fields of a Go struct, embedded structs without a JSON name flattened:
    [(json name, go type, tags)]."""
    out = []
    for f in types[go]:
        t = tags(f['tag'])
        jopts = t.get('json', '').split(',')
        jname = jopts[0]
        if jname == '-' or (not f['embedded'] and not f['go'][0].isupper()):
            continue
        if f['embedded'] and not jname:
            inner = f['type']
            if inner['k'] == 'ptr':
                inner = inner['e']
            if inner['k'] != 'struct':
                sys.exit(f'{go}.{f["go"]}: embedded non-struct')
            out += struct_fields(inner['name'])
            continue
        out.append((jname or f['go'], f['type'], t))
    return out


defs = {}  # go name -> [(json, atom text, patch text)]
queue = [go for _, _, go in roots]
disagreements = []
fallbacks = []
used_corrections = set()
list_map_keys = set()  # (item Go type, key JSON field) of every list map


def list_kind(owner, jname, t, item, strategy):
    """The ListKind of list field `jname` of `owner`, item Go type `item`."""
    patch = [s for s in t.get('patchStrategy', '').split(',') if s]
    key = t.get('patchMergeKey')
    if 'merge' in patch:
        by_tags = ('map', [key]) if key else ('set',)
    else:
        by_tags = ('atomic',)
    where = f'{openapi_name(owner)}.{jname}'
    if strategy is None:
        # Every list k8s-openapi knows has a strategy: this field is newer than it.
        chosen = by_tags
        fallbacks.append(f'{where}: not in k8s-openapi; struct tags give {fmt(by_tags)}')
    elif strategy[0] == 'k8s-openapi-only':
        chosen = by_tags
        disagreements.append(f'{where}: k8s-openapi keys items by a nested field; struct tags give {fmt(by_tags)}')
    else:
        chosen = strategy
        if chosen != by_tags:
            disagreements.append(f'{where}: k8s-openapi (list markers) {fmt(chosen)} over struct tags {fmt(by_tags)}')
    fix = LIST_CORRECTIONS.get((owner, jname))
    if fix:
        used_corrections.add((owner, jname))
        value, marker = fix
        if value == chosen:
            warn(f'note: correction {where} = {fmt(value)} already given by the machine sources')
        disagreements.append(f'{where}: marker {marker} gives {fmt(value)} over {fmt(chosen)}')
        chosen = value
    if chosen[0] == 'map':
        if item['k'] != 'struct' or item['name'] in SCALAR_STRUCTS | UNTYPED_STRUCTS:
            sys.exit(f'{where}: list map of non-structs')
        names = {j for j, _, _ in struct_fields(item['name'])}
        for k in chosen[1]:
            if k not in names:
                sys.exit(f'{where}: key {k} is not a field of {item["name"]}')
            list_map_keys.add((item['name'], k))
    if chosen[0] == 'set' and item['k'] == 'struct' and item['name'] not in SCALAR_STRUCTS:
        sys.exit(f'{where}: a set of structs')
    return chosen


def fmt(s):
    if s[0] == 'map':
        return 'map keyed by ' + '+'.join(s[1])
    return s[0]


def struct_json(go):
    return {j for j, _, _ in struct_fields(go)}


def atom(owner, jname, t, ty, strategy):
    """The Rust `Atom` expression for Go type `ty` of field `jname` of `owner`."""
    k = ty['k']
    if k == 'ptr':
        return atom(owner, jname, t, ty['e'], strategy)
    if k == 'struct':
        name = ty['name']
        if name in SCALAR_STRUCTS:
            return 'Scalar'
        if name in UNTYPED_STRUCTS:
            return 'Untyped'
        if name not in types:
            sys.exit(f'{owner}.{jname}: struct {name} not in the Go types')
        if name not in defs and name not in queue:
            queue.append(name)
        atomic = name in ATOMIC_STRUCTS
        fix = STRUCT_FIELD_CORRECTIONS.get((owner, jname))
        if fix:
            used_corrections.add((owner, jname))
            disagreements.append(f'{openapi_name(owner)}.{jname}: marker {fix[1]} makes the reference {fix[0]}')
            atomic = fix[0] == 'atomic'
        atomic = 'true' if atomic else 'false'
        return f'Struct {{ name: "{openapi_name(name)}", atomic: {atomic} }}'
    if k in ('string', 'bool', 'int32', 'int64', 'float64', 'uint8'):
        return 'Scalar'
    if k == 'slice':
        e = ty['e']
        if e['k'] == 'uint8':
            return 'Scalar'  # []byte is a base64 string
        if strategy is not None and strategy[0].startswith('map-'):
            sys.exit(f'{owner}.{jname}: a map strategy on a list')
        kind = list_kind(owner, jname, t, e, strategy)
        items = atom(owner, jname + '[]', {}, e, None)
        if kind[0] == 'map':
            lk = 'L::Map(&[' + ', '.join(f'"{k}"' for k in kind[1]) + '])'
        else:
            lk = {'atomic': 'L::Atomic', 'set': 'L::Set'}[kind[0]]
        return f'List {{ items: &{items}, kind: {lk} }}'
    if k == 'map':
        if ty['key']['k'] != 'string':
            sys.exit(f'{owner}.{jname}: map key {ty["key"]}')
        how = 'granular'
        if strategy is not None:
            if not strategy[0].startswith('map-'):
                sys.exit(f'{owner}.{jname}: a list strategy on a map')
            how = strategy[0][4:]
        fix = MAP_CORRECTIONS.get((owner, jname))
        if fix:
            used_corrections.add((owner, jname))
            disagreements.append(f'{openapi_name(owner)}.{jname}: marker {fix[1]} gives a {fix[0]} map over {how}')
            how = fix[0]
        elif strategy is None:
            fallbacks.append(f'{openapi_name(owner)}.{jname}: map not in k8s-openapi; granular')
        values = atom(owner, jname + '{}', {}, ty['e'], strategy[1] if strategy else None)
        return f'Map {{ values: &{values}, atomic: {"true" if how == "atomic" else "false"} }}'
    sys.exit(f'{owner}.{jname}: unsupported Go type {ty}')


def patch_meta(t):
    patch = [s for s in t.get('patchStrategy', '').split(',') if s]
    for s in patch:
        if s not in ('merge', 'retainKeys', 'replace'):
            sys.exit(f'unknown patch strategy {s}')
    key = t.get('patchMergeKey')
    merge = 'merge' in patch
    retain = 'retainKeys' in patch
    if not merge and key:
        sys.exit(f'merge key {key} without the merge strategy')
    k = f'Some("{key}")' if key else 'None'
    if not merge and not retain:
        return 'NO_PATCH'
    return f'PatchMeta {{ merge: {str(merge).lower()}, retain_keys: {str(retain).lower()}, merge_key: {k} }}'


while queue:
    go = queue.pop(0)
    if go in defs:
        continue
    fields = []
    strategies = openapi.get(go, {})
    seen = set()
    for jname, ty, t in struct_fields(go):
        if jname in seen:
            sys.exit(f'{go}: duplicate JSON field {jname}')
        seen.add(jname)
        fields.append((jname, atom(go, jname, t, ty, strategies.get(jname)), patch_meta(t)))
    fields.sort()
    defs[go] = fields

for key in set(LIST_CORRECTIONS) | set(MAP_CORRECTIONS) | set(STRUCT_FIELD_CORRECTIONS):
    if key not in used_corrections:
        sys.exit(f'correction {key} names no field of a served type')
for name in ATOMIC_STRUCTS:
    if name not in defs:
        sys.exit(f'atomic struct {name} is not a served type')
for key in KEY_DEFAULTS:
    if key not in list_map_keys:
        sys.exit(f'key default {key} names no list map key of a served type')

# --- output -----------------------------------------------------------------------------------

w = sys.stdout.write
w(f'''// @generated by tools/gen_builtin_schema.py from the API types of kubectl {version}, k8s-openapi's
// merge strategies and the corrections listed in the generator. Do not edit.
//
// One entry per struct type reachable from a served kind, named as Kubernetes' OpenAPI names it;
// fields sorted by JSON name, types by name, roots by (apiVersion, kind), for binary search.

use super::builtin::{{NO_PATCH, PatchMeta, TypeDef, field as f}};
use super::schema::Atom::{{List, Map, Scalar, Struct, Untyped}};
use super::schema::ListKind as L;

/// The Kubernetes version whose types the table describes.
pub(super) const KUBERNETES_VERSION: &str = "{version}";

/// Every struct type, sorted by name.
pub(super) static TYPES: &[TypeDef] = &[
''')
for go in sorted(defs, key=openapi_name):
    w(f'    TypeDef {{\n        name: "{openapi_name(go)}",\n        fields: &[\n')
    for jname, a, p in defs[go]:
        w(f'            f("{jname}", {a}, {p}),\n')
    w('        ],\n    },\n')
w('];\n\n')
w('/// `(apiVersion, kind, type)` of every served kind, sorted.\n')
w('pub(super) static ROOTS: &[(&str, &str, &str)] = &[\n')
for av, kind, go in roots:
    w(f'    ("{av}", "{kind}", "{openapi_name(go)}"),\n')
w('];\n\n')
w('/// `(type, field, default)` of every list map key with a default, sorted.\n')
w('pub(super) static KEY_DEFAULTS: &[(&str, &str, &str)] = &[\n')
for (go, field), (default, _) in sorted(KEY_DEFAULTS.items(), key=lambda kv: (openapi_name(kv[0][0]), kv[0][1])):
    w(f'    ("{openapi_name(go)}", "{field}", "{default}"),\n')
w('];\n')

warn(f'{len(defs)} types, {sum(len(v) for v in defs.values())} fields, {len(roots)} kinds')
for d in sorted(disagreements):
    warn('disagree: ' + d)
for d in sorted(fallbacks):
    warn('fallback: ' + d)
for go, field in sorted(list_map_keys, key=lambda k: (openapi_name(k[0]), k[1])):
    default = KEY_DEFAULTS.get((go, field))
    warn(f'key: {openapi_name(go)}.{field}: ' + (f'default {default[0]!r} ({default[1]})' if default else 'no default'))
