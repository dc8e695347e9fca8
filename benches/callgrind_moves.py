#!/usr/bin/env python3
"""Counts executed 16-byte (xmm) memory moves in a callgrind --dump-instr=yes profile (book: Performance).

Usage: callgrind_moves.py PROFILE.out [UNITS]   (figures are divided by UNITS, e.g. round trips)
Reads per-instruction self costs (Ir = executions of that instruction), disassembles each object with
objdump, and sums executions of movups/movaps/movdqu/movdqa (and VEX forms) on xmm registers with a memory
operand, i.e. 16-byte loads and stores. Also reports calls into memcpy/memmove and malloc/free.
"""
import re, subprocess, sys, collections

path = sys.argv[1]
per = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0
names = {'ob': {}, 'fn': {}, 'fl': {}}
cost = collections.defaultdict(lambda: collections.Counter())  # ob -> addr -> count
calls_to = collections.Counter()
ob = fn = None
last = [0, 0]
skip_next = False
pending_call = None
total = 0
def name(kind, rest):
    m = re.match(r'\((\d+)\)(?: (.*))?', rest)
    if not m:
        return rest
    if m.group(2) is not None:
        names[kind][m.group(1)] = m.group(2)
    return names[kind].get(m.group(1), rest)
def pos(tok, i):
    if tok == '*':
        return last[i]
    if tok[0] in '+-':
        return last[i] + int(tok, 0 if tok[1:].startswith('0x') else 10)
    return int(tok, 0)
for line in open(path):
    line = line.rstrip('\n')
    if not line or line[0] == '#':
        continue
    if line.startswith(('ob=', 'fn=', 'fl=', 'fi=', 'fe=', 'cob=', 'cfn=', 'cfi=', 'cfl=', 'calls=')):
        k, rest = line.split('=', 1)
        if k == 'ob': ob = name('ob', rest)
        elif k == 'fn': fn = name('fn', rest)
        elif k in ('fl', 'fi', 'fe', 'cfi', 'cfl'): name('fl', rest)
        elif k == 'cob': name('ob', rest)
        elif k == 'cfn': pending_call = name('fn', rest)
        elif k == 'calls':
            n = int(rest.split()[0])
            if pending_call: calls_to[pending_call] += n
            skip_next = True
        continue
    if not (line[0].isdigit() or line[0] in '+-*'):
        continue
    toks = line.split()
    if len(toks) < 3:
        continue
    a = pos(toks[0], 0); l = pos(toks[1], 1)
    last = [a, l]
    if skip_next:
        skip_next = False
        continue
    c = int(toks[2]); total += c
    cost[ob][a] += c
mv = re.compile(r'^\s*([0-9a-f]+):\s+(v?mov(?:ups|aps|dqu|dqa|upd|apd))\s+(.*)$')
moves = 0; byobj = {}
for o, addrs in cost.items():
    if not o or not o.startswith('/'):
        continue
    try:
        out = subprocess.run(['objdump', '-d', '--no-show-raw-insn', o], capture_output=True, text=True).stdout
    except Exception:
        continue
    n = 0
    for ln in out.splitlines():
        m = mv.match(ln)
        if not m: continue
        ops = m.group(3)
        if '%xmm' not in ops or '(' not in ops: continue
        a = int(m.group(1), 16)
        if a in addrs: n += addrs[a]
    byobj[o] = n; moves += n
print(f'Ir total {total}  per unit {total/per:.0f}')
print(f'16-byte moves {moves}  per unit {moves/per:.1f}')
for o, n in byobj.items():
    if n: print(f'   {o}: {n/per:.1f}')
for k in sorted(calls_to, key=lambda k: -calls_to[k]):
    if re.search(r'memcpy|memmove|^malloc$|^free$|cfree|__libc_malloc|__libc_free|_int_free|_int_malloc', k):
        print(f'calls to {k}: {calls_to[k]/per:.2f}')
