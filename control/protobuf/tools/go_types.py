#!/usr/bin/env python3
"""Reads the Go runtime type metadata of a (stripped) Go binary and writes, for every struct type
of the Kubernetes API packages, its fields with their Go types and struct tags.

Usage: go_types.py KUBECTL_BINARY OUT.json
"""
import struct, sys, mmap, json
path = sys.argv[1]
f = open(path, 'rb'); data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
e_shoff, = struct.unpack_from('<Q', data, 0x28)
e_shentsize, e_shnum, e_shstrndx = struct.unpack_from('<HHH', data, 0x3a)
secs = []
for i in range(e_shnum):
    o = e_shoff + i * e_shentsize
    name, typ, flags, addr, off, size = struct.unpack_from('<IIQQQQ', data, o)
    secs.append((name, addr, off, size, typ))
stro = secs[e_shstrndx][2]
def cstr(o):
    return data[o:data.find(b'\0', o)].decode()
S = {cstr(stro + s[0]): s[1:] for s in secs}
def va2off(va):
    for a, o, sz, t in S.values():
        if a and t != 8 and a <= va < a + sz:
            return o + (va - a)
    raise ValueError(hex(va))
def u64(va): return struct.unpack_from('<Q', data, va2off(va))[0]
def i32(va): return struct.unpack_from('<i', data, va2off(va))[0]
def u8(va): return data[va2off(va)]
# moduledata starts with a pointer to the pclntab header
pcln = S['.gopclntab'][0]
md = None
for sec in ('.go.module', '.noptrdata', '.data'):
    if sec not in S: continue
    a, o, sz, _ = S[sec]
    i = data.find(struct.pack('<Q', pcln), o, o + sz)
    while i != -1 and (i - o) % 8:
        i = data.find(struct.pack('<Q', pcln), i + 1, o + sz)
    if i != -1:
        md = a + (i - o); break
words = [u64(md + 8 * k) for k in range(64)]
tl_addr, tl_len = S['.typelink'][0], S['.typelink'][2] // 4
tlk = next(k for k in range(62) if words[k] == tl_addr and words[k + 1] == tl_len)
types = next(words[k] for k in range(20, tlk) if words[k] == S['.rodata'][0])
def varint(va):
    v = s = 0
    while True:
        b = u8(va); va += 1; v |= (b & 0x7f) << s; s += 7
        if b < 0x80: return v, va
def rd(va, n): o = va2off(va); return bytes(data[o:o + n]).decode('utf-8', 'replace')
def name(va):
    flag = u8(va); n, p = varint(va + 1); nm = rd(p, n); p += n; tag = ''
    if flag & 2:
        tn, p2 = varint(p); tag = rd(p2, tn)
    return nm, tag, flag
KIND = {1:'bool',2:'int',3:'int8',4:'int16',5:'int32',6:'int64',7:'uint',8:'uint8',9:'uint16',10:'uint32',
        11:'uint64',12:'uintptr',13:'float32',14:'float64',15:'complex64',16:'complex128',17:'array',18:'chan',
        19:'func',20:'interface',21:'map',22:'ptr',23:'slice',24:'string',25:'struct',26:'unsafeptr'}
KSIZE = {17: 72, 18: 64, 19: 56, 20: 72, 21: 0, 22: 56, 23: 56, 25: 80}
def kind(t): return u8(t + 23) & 0x1f
def tname(t):
    nm = name(types + i32(t + 40))[0]
    return nm[1:] if u8(t + 20) & 2 else nm
def pkgpath(t):
    if not u8(t + 20) & 1: return ''
    k = kind(t)
    if k not in KSIZE or k == 21: return None
    off = i32(t + KSIZE[k])
    return name(types + off)[0] if off else ''
desc = {}
def describe(t):
    """A type as a JSON-able dict; structs by reference."""
    k = kind(t); d = {'k': KIND.get(k, k)}
    if u8(t + 20) & 4:
        pp = pkgpath(t)
        d['name'] = ((pp + '.') if pp else '') + tname(t).split('.')[-1] if pp is not None else tname(t)
    if k in (22, 23, 17): d['e'] = describe(u64(t + 48)) if kind(u64(t + 48)) != 25 else sref(u64(t + 48))
    if k == 21: d['key'] = describe(u64(t + 48)); d['e'] = describe(u64(t + 56)) if kind(u64(t + 56)) != 25 else sref(u64(t + 56))
    if k == 25: return sref(t)
    return d
pending = []
def sref(t):
    nm = tname(t); pp = pkgpath(t) if u8(t + 20) & 4 else ''
    full = (pp + '.' + nm.split('.')[-1]) if pp else nm
    if full not in desc:
        desc[full] = None; pending.append((full, t))
    return {'k': 'struct', 'name': full}
roots = [types + i32(tl_addr + 4 * i) for i in range(tl_len)]
seen = set(); stack = list(roots)
# walk every type reachable from typelinks (and ptrToThis) to find struct types
while stack:
    t = stack.pop()
    if t in seen or not t: continue
    seen.add(t)
    k = kind(t)
    if k in (22, 23, 17): stack.append(u64(t + 48))
    elif k == 21: stack += [u64(t + 48), u64(t + 56)]
    elif k == 25:
        for j in range(u64(t + 64)):
            stack.append(u64(u64(t + 56) + 24 * j + 8))
        if u8(t + 20) & 4 and (pkgpath(t) or '').startswith('k8s.io/'):
            sref(t)
    ptt = i32(t + 44)
    if ptt: stack.append(types + ptt)
while pending:
    full, t = pending.pop()
    fields = []
    for j in range(u64(t + 64)):
        fa = u64(t + 56) + 24 * j
        fn, tag, flag = name(u64(fa))
        fields.append({'go': fn, 'tag': tag, 'embedded': bool(flag & 8), 'type': describe(u64(fa + 8))})
    desc[full] = fields
json.dump({k: v for k, v in desc.items() if k.startswith('k8s.io/')}, open(sys.argv[2], 'w'), indent=0, sort_keys=True)
print(len(desc), 'struct types', file=sys.stderr)
