#!/usr/bin/env python3
"""The longest functions in the given folders (C, CUDA, .inc): the lines from the first line
of the signature to the closing brace at column 0. Usage: tools/longest_functions.py src kernels
(N=20 for more rows). Issue 15: no function in src/ or kernels/ longer than 80 lines."""
import os, sys, re
rows = []
for top in sys.argv[1:]:
    for dp, dn, fn in os.walk(top):
        for f in fn:
            if not re.search(r'\.(c|h|cu|cuh|inc|cpp)$', f): continue
            p = os.path.join(dp, f); L = open(p, errors='replace').read().split('\n')
            i = 0
            while i < len(L):
                if L[i].startswith('{'):
                    s = i - 1
                    while s > 0 and L[s-1].strip() and not L[s-1].startswith(('}', '#')) and not L[s-1].rstrip().endswith((';', '*/')):
                        s -= 1
                    j = i + 1
                    while j < len(L) and not L[j].startswith('}'): j += 1
                    rows.append((j - s + 1, j - i + 1, p, s + 1, L[s].strip()[:70]))
                    i = j
                i += 1
rows.sort(reverse=True)
for r in rows[:int(os.environ.get('N', '8'))]: print('%4d lines (body %d)  %s:%d  %s' % r)
