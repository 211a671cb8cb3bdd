#!/usr/bin/env python3
"""Markdown tables from scripts/results_spec.sh's outputs: draft acceptance next to KLD per
variant (sorted by KLD), and the speedup runs (median over rounds per draft and K).

    python3 scripts/results_spec_table.py OUT_DIR
"""
import glob
import json
import os
import statistics
import sys

out = sys.argv[1] if len(sys.argv) > 1 else '/tmp/spec'
rows = []
for f in glob.glob(os.path.join(out, 'draft-*.json')):
    n = os.path.basename(f)[6:-5]
    try:
        d = json.load(open(f))
        k = json.load(open(os.path.join(out, 'kld-' + n + '.json')))
    except (OSError, ValueError):
        continue
    rows.append((k['kld']['mean'], n, d, k))
rows.sort()
print('| variant | mean KLD | same top %% | PPL | accept %% (K %d) | per-position %% | alpha | accepted / target forward |'
      % (rows[0][2]['draft_max'] if rows else 4))
print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for kl, n, d, k in rows:
    print('| %s | %.6f ± %.6f | %.2f | %.4f | %.2f | %.2f | %.4f | %.3f |' % (
        n, kl, k['kld']['stderr'], 100 * k['same_top'], k['ppl'], 100 * d['acceptance_rate'],
        100 * d['acceptance_per_position'], d['alpha'], d['mean_accepted_length']))
if rows:
    print('\nbaseline PPL %.4f; %d chunks, %d judged positions for the first row' % (
        rows[0][3]['ppl_base'], rows[0][2]['chunks'], rows[0][2]['judged']))
    by = {name: i for i, (_, name, _, _) in enumerate(rows)}
    for key in ('acceptance_rate', 'acceptance_per_position', 'alpha'):
        order = [n for _, n, _, _ in sorted(rows, key=lambda r: -r[2][key])]
        print('order by %s: %s (%s KLD order)' % (
            key, ', '.join(order), 'same as' if [by[n] for n in order] == sorted(by.values()) else 'NOT the'))

sp = {}
for f in glob.glob(os.path.join(out, 'sp-*.json')):
    _, rnd, d, k = os.path.basename(f)[:-5].split('-')
    try:
        j = json.load(open(f))['speculative']
    except (OSError, ValueError, KeyError):
        continue
    sp.setdefault((d, int(k)), []).append(j)
if sp:
    print('\n| draft | K | runs | accept % | tokens / target forward | spec tok/s | target alone tok/s | speedup (median) | identical |')
    print('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
    for (d, k), js in sorted(sp.items()):
        med = lambda key: statistics.median(j[key] for j in js)
        spec_tps = statistics.median((j['tokens_per_target_forward'] * j['target_forwards']) / j['decode_seconds']
                                     for j in js)
        print('| %s | %d | %d | %.1f | %.2f | %.2f | %.2f | %.2f (%.2f-%.2f) | %s |' % (
            d, k, len(js), 100 * med('acceptance_rate'), med('tokens_per_target_forward'), spec_tps,
            med('target_alone_tokens_per_second'), med('speedup'), min(j['speedup'] for j in js),
            max(j['speedup'] for j in js), 'all' if all(j['identical'] for j in js) else
            '%d of %d' % (sum(bool(j['identical']) for j in js), len(js))))
