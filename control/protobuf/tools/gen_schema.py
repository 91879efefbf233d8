#!/usr/bin/env python3
"""Generates src/schema.rs from a JSON dump of kubectl's Go API struct types.

The dump comes from tools/go_types.py, run on a kubectl binary of the Kubernetes version whose
protobuf bodies skiff must read. Every fact the decoder needs is in the Go types and their struct
tags, which is where Kubernetes' protobuf and JSON encodings are both defined:

* `protobuf:"<wire>,<number>,..."` gives the field number. Its wire-type word is not trusted (a
  few Kubernetes tags are wrong); the Go type decides how the value is encoded.
* `json:"name,omitempty,omitzero"` gives the JSON key and when Go leaves the field out.
* A Go pointer is sent only when non-nil, while a non-pointer scalar is always sent, so whether a
  zero value means "unset" depends on pointer-ness, which only the Go type shows.
* An embedded struct without a JSON name is a nested message on the wire but flattened in JSON.

Fields keep the Go declaration order, which is the order `encoding/json` writes them in (the JSON
encoder in `src/json.rs` walks them as they are); each message also lists its wire fields by
number for the protobuf decoder. Fields that are only in JSON (no `protobuf:` tag: the embedded
`TypeMeta`, `metav1.Table`'s fields) get number 0 and are not on the wire.

Usage: gen_schema.py TYPES.json KUBECTL_VERSION > src/schema.rs
"""
import json, re, sys

types = json.load(open(sys.argv[1]))
version = sys.argv[2]

META = 'k8s.io/apimachinery/pkg/apis/meta/v1'
SPECIAL = {
    META + '.Time': 'Time',
    META + '.MicroTime': 'MicroTime',
    META + '.Duration': 'Duration',
    META + '.FieldsV1': 'FieldsV1',
    'k8s.io/apimachinery/pkg/api/resource.Quantity': 'Quantity',
    'k8s.io/apimachinery/pkg/util/intstr.IntOrString': 'IntOrString',
    'k8s.io/apimachinery/pkg/runtime.RawExtension': 'RawExtension',
}
# Go package directory under k8s.io/api -> API group name.
GROUPS = {
    'admission': 'admission.k8s.io', 'admissionregistration': 'admissionregistration.k8s.io',
    'apidiscovery': 'apidiscovery.k8s.io', 'apiserverinternal': 'internal.apiserver.k8s.io',
    'apps': 'apps', 'authentication': 'authentication.k8s.io',
    'authorization': 'authorization.k8s.io', 'autoscaling': 'autoscaling', 'batch': 'batch',
    'certificates': 'certificates.k8s.io', 'coordination': 'coordination.k8s.io', 'core': '',
    'discovery': 'discovery.k8s.io', 'events': 'events.k8s.io', 'extensions': 'extensions',
    'flowcontrol': 'flowcontrol.apiserver.k8s.io', 'imagepolicy': 'imagepolicy.k8s.io',
    'lifecycle': 'lifecycle.k8s.io', 'networking': 'networking.k8s.io', 'node': 'node.k8s.io',
    'policy': 'policy', 'rbac': 'rbac.authorization.k8s.io', 'resource': 'resource.k8s.io',
    'scheduling': 'scheduling.k8s.io', 'storage': 'storage.k8s.io',
    'storagemigration': 'storagemigration.k8s.io',
}
SCALARS = {'string': 'Str', 'bool': 'Bool', 'int32': 'Int32', 'int64': 'Int64'}
# Types that no kind embeds but that responses are made of: a watch stream's event.
EXTRA_ROOTS = [META + '.WatchEvent']


def tags(tag):
    return dict(re.findall(r'(\w+):"([^"]*)"', tag))


def is_kind(fields):
    return any(f['embedded'] and f['type'].get('name') == META + '.TypeMeta' for f in fields)


kinds = []  # (apiVersion, kind, go name)
meta_kinds = []
for name, fields in sorted(types.items()):
    if not is_kind(fields):
        continue
    pkg, kind = name.rsplit('.', 1)
    m = re.fullmatch(r'k8s\.io/api/([a-z]+)/(v[0-9a-z]+)', pkg)
    if m:
        if m.group(1) not in GROUPS:
            sys.exit(f'unknown API group directory {m.group(1)}')
        group = GROUPS[m.group(1)]
        kinds.append((f'{group}/{m.group(2)}' if group else m.group(2), kind, name))
    elif pkg == META:
        meta_kinds.append((kind, name))

index = {}
order = []


def msg(name):
    if name not in index:
        index[name] = len(order)
        order.append(name)
    return index[name]


def ty(t, where):
    """The Rust `Ty` expression for a Go type on the wire."""
    k = t['k']
    if k == 'struct':
        if t['name'] in SPECIAL:
            return SPECIAL[t['name']]
        if t['name'] not in types:
            sys.exit(f'{where}: struct {t["name"]} not in the dump')
        return f'Message({msg(t["name"])})'
    if k in SCALARS:
        return SCALARS[k]
    if k == 'interface':  # `interface{}` (a Table row's cells): any JSON value
        return 'Any'
    if k == 'ptr':
        return ty(t['e'], where)
    if k == 'slice':
        e = t['e']
        if e['k'] == 'uint8':
            return 'Bytes'
        inner = ty(e, where)
        if 'name' in t:  # a named slice type is sent as a message { repeated T items = 1; }
            return f'Wrapped(&{inner})'
        return f'Repeated(&{inner})'
    if k == 'map':
        if t['key']['k'] != 'string':
            sys.exit(f'{where}: map key {t["key"]}')
        return f'Map(&{ty(t["e"], where)})'
    sys.exit(f'{where}: unsupported Go type {t}')


for _, _, name in kinds:
    msg(name)
for _, name in meta_kinds:
    msg(name)
for name in EXTRA_ROOTS:
    msg(name)

out_msgs = []
i = 0
while i < len(order):
    name = order[i]
    fields = []
    for f in types[name]:
        t = tags(f['tag'])
        jopts = t.get('json', '').split(',')
        if jopts[0] == '-' and len(jopts) == 1:
            if 'protobuf' in t and t['protobuf'] != '-':
                sys.exit(f'{name}.{f["go"]}: on the wire but not in JSON')
            continue
        if not f['embedded'] and not f['go'][:1].isupper():
            continue  # unexported: neither encoding sees it
        pb = t.get('protobuf')
        number = 0 if pb is None or pb == '-' else int(pb.split(',')[1])
        jname = jopts[0] or f['go']
        # encoding/json flattens an embedded struct that has no JSON name (`json:",inline"` in
        # older Kubernetes, `json:""` in newer: "inline" was never an encoding/json option).
        inline = 'inline' in jopts[1:] or (f['embedded'] and not jopts[0])
        flags = []
        if f['type']['k'] == 'ptr':
            flags.append('POINTER')
        if 'omitempty' in jopts[1:]:
            flags.append('OMITEMPTY')
        if 'omitzero' in jopts[1:]:
            flags.append('OMITZERO')
        if inline:
            if f['type']['k'] != 'struct':
                sys.exit(f'{name}.{f["go"]}: inline field that is not a struct value')
            flags.append('INLINE')
            jname = ''
        fields.append((number, jname, ty(f['type'], f'{name}.{f["go"]}'), flags))
    wire = sorted((n, j) for j, (n, *_) in enumerate(fields) if n)
    if len({n for n, _ in wire}) != len(wire):
        sys.exit(f'{name}: duplicate field numbers')
    if len(fields) > 255:
        sys.exit(f'{name}: more fields than a u8 indexes')
    if any(t == 'Any' or 'Any)' in t for n, _, t, _ in fields if n):
        sys.exit(f'{name}: an interface{{}} field on the wire')
    out_msgs.append((name, fields, [j for _, j in wire]))
    i += 1


def json_names(name, seen=None):
    """The JSON keys of a message with its inline structs flattened, in encoding order."""
    out = []
    for number, jname, t, flags in next(f for n, f, _ in out_msgs if n == name):
        if 'INLINE' in flags:
            out += json_names(order[int(re.fullmatch(r'Message\((\d+)\)', t).group(1))])
        else:
            out.append(jname)
    return out


# Go lets the shallower of two same-named fields win; the encoder instead relies on there being no
# such conflicts in the Kubernetes types, so check it.
for name, _, _ in out_msgs:
    keys = json_names(name)
    if len(set(keys)) != len(keys):
        sys.exit(f'{name}: JSON key conflict among inlined fields: {keys}')

w = sys.stdout.write
w(f'''// @generated by tools/gen_schema.py from the API types of kubectl {version}. Do not edit.
//
// One entry per Go struct reachable from a kind, in the Go types' terms: fields in declaration
// order (the order encoding/json writes them) with their protobuf number (0: JSON only), JSON key,
// type, and the Go facts that decide the JSON (pointer, omitempty, omitzero, inline); `wire` lists
// the fields on the wire by number.

use crate::schema_types::Ty::*;
use crate::schema_types::{{INLINE, Message, OMITEMPTY, OMITZERO, POINTER, field as f}};

/// The Kubernetes version the table was generated from.
pub(crate) const KUBERNETES_VERSION: &str = "{version}";

/// Every message, indexed by `Ty::Message`.
pub(crate) static MESSAGES: &[Message] = &[
''')
for name, fields, wire in out_msgs:
    w(f'    // {index[name]}\n    Message {{\n        name: "{name}",\n        fields: &[\n')
    for number, jname, t, flags in fields:
        fl = ' | '.join(flags) if flags else '0'
        w(f'            f({number}, "{jname}", {t}, {fl}),\n')
    w(f'        ],\n        wire: &[{", ".join(map(str, wire))}],\n    }},\n')
w('];\n\n')
w('/// Go type name to message, sorted for binary search.\n')
w('pub(crate) static BY_NAME: &[(&str, u16)] = &[\n')
for name in sorted(index):
    w(f'    ("{name}", {index[name]}),\n')
w('];\n\n')
kinds.sort()
w('/// `(apiVersion, kind)` to message, sorted for binary search.\n')
w('pub(crate) static KINDS: &[(&str, &str, u16)] = &[\n')
for av, k, name in kinds:
    w(f'    ("{av}", "{k}", {index[name]}),\n')
w('];\n\n')
meta_kinds.sort()
w('/// Kinds of meta.k8s.io/v1 (options, Status, ...), which Kubernetes registers in every group\n')
w('/// version; sorted for binary search.\n')
w('pub(crate) static META_KINDS: &[(&str, u16)] = &[\n')
for k, name in meta_kinds:
    w(f'    ("{k}", {index[name]}),\n')
w('];\n')
print(f'{len(out_msgs)} messages, {sum(len(f) for _, f, _ in out_msgs)} fields, {len(kinds)} kinds', file=sys.stderr)
