"""Quantiles of Prometheus histograms from two /metrics scrapes (before and after a run):
    histogram_quantiles.py before.txt after.txt NAME [NAME ...]
Prints the median and p99 of each histogram's observations between the scrapes,
interpolated within buckets (the usual histogram_quantile estimate)."""
import re
import sys


def buckets(text, name):
    out = {}
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket\{{(.*)\}} (\S+)', line)
        if m:
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            out[float(le)] = out.get(float(le), 0.0) + float(m.group(2))
    return out


def quantile(q, counts):
    edges = sorted(counts)
    total = counts[edges[-1]]
    if total <= 0:
        return float('nan')
    rank, prev_edge, prev_count = q * total, 0.0, 0.0
    for e in edges:
        if counts[e] >= rank:
            if e == float('inf'):
                return prev_edge
            width = counts[e] - prev_count
            return prev_edge + (e - prev_edge) * ((rank - prev_count) / width if width else 1)
        prev_edge, prev_count = e, counts[e]
    return edges[-1]


before, after = open(sys.argv[1]).read(), open(sys.argv[2]).read()
for name in sys.argv[3:]:
    b, a = buckets(before, name), buckets(after, name)
    delta = {k: a[k] - b.get(k, 0.0) for k in a}
    if not delta:
        print(f"{name}: no observations")
        continue
    n = int(delta[max(delta)])
    print(f"{name}: n={n} median={quantile(0.5, delta) * 1e6:.0f}us p99={quantile(0.99, delta) * 1e6:.0f}us")
