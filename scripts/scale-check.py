#!/usr/bin/env python3
"""The scale model (scale-model.py) against `train --timeline` runs made here.

usage: scale-check.py --compute BENCH.jsonl --arch ARCH --global-batch B [--allreduce AR.json]
                      [--cores-per-node C] [--ranks-per-node R] [--overlap buckets|none] [--skip N] TRACE.json...

For each trace (one run at n ranks, global batch B): the model's step for n ranks of one BLAS thread computing
B/n images each — compute and SGD from the bench line at batch B/n, × R/C when R ranks share C cores (time
slicing), α (whole sweep) and β (fit_large for messages of its sizes, else the whole sweep's) from
`dann-dist bench --allreduce --json` measured at the same n on the same transport — next to
the trace's mean step without its `data` span (the model has no data loading), and the measured compute,
allreduce wait and SGD. Steps 1..N are skipped (default 2: warm-up, first shard read).
"""
import argparse, collections, importlib.util, json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("scale_model", os.path.join(here, "scale-model.py"))
model = importlib.util.module_from_spec(spec)
spec.loader.exec_module(model)


def measured(path, skip):
    """Mean ms over ranks and kept steps of step − data, data, compute, allreduce, optimizer; and the rank count."""
    events = json.load(open(path))["traceEvents"]
    ranks = sorted({e["pid"] for e in events if e.get("ph") == "X"})
    totals = collections.defaultdict(float)
    for rank in ranks:
        steps = collections.defaultdict(dict)
        for e in events:
            if e["pid"] == rank and e["ph"] == "X":
                steps[e["args"]["step"]][e["name"]] = e
        kept = sorted(s for s, spans in steps.items() if s > skip and "data" in spans and "optimizer" in spans)
        if not kept:
            raise SystemExit(f"scale-check.py: error: {path}: rank {rank} has no steps after --skip {skip}")
        for s in kept:
            spans = steps[s]
            step = spans["optimizer"]["ts"] + spans["optimizer"]["dur"] - spans["data"]["ts"]
            values = {"step": step - spans["data"]["dur"], "data": spans["data"]["dur"], "compute": spans["compute"]["dur"],
                      "allreduce": spans.get("allreduce", {"dur": 0})["dur"], "optimizer": spans["optimizer"]["dur"]}
            for key, us in values.items():
                totals[key] += us / 1000 / len(kept) / len(ranks)
    return dict(totals), len(ranks)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compute", nargs="+", required=True)
    p.add_argument("--arch", required=True)
    p.add_argument("--global-batch", type=int, default=128)
    p.add_argument("--allreduce", help="bench --allreduce --json of the same rank count and transport (not needed for 1 rank)")
    p.add_argument("--cores-per-node", type=int, default=os.cpu_count())
    p.add_argument("--ranks-per-node", type=int, help="default: the trace's rank count (one node)")
    p.add_argument("--overlap", choices=["buckets", "none"], default="buckets")
    p.add_argument("--busy-factor", type=float, default=1.0, help="compute × this with every core busy (as scale-model.py)")
    p.add_argument("--skip", type=int, default=2)
    p.add_argument("traces", nargs="+")
    args = p.parse_args()
    table = model.load_compute(args.compute)
    alpha_n = beta = None
    if args.allreduce:
        ar = json.load(open(args.allreduce))
        # α from the whole sweep (small sizes decide it); β from fit_large for messages of its sizes (a seed bucket
        # or gradient, 26–133 MB), from the whole sweep for smaller ones (all of small's 0.8 MB).
        large = ar.get("fit_large") or ar["fit"]
        alpha_n, ar_ranks = ar["fit"]["alpha_s"], ar["ranks"]
        beta_small, beta_large = ar["fit"]["beta_bytes_per_s"] or float("inf"), large["beta_bytes_per_s"] or float("inf")
        large_from = large.get("from_bytes", 0)
        beta = lambda nbytes: beta_large if nbytes >= large_from else beta_small
    print("| trace | n | batch/rank | time-share | predicted ms: compute+SGD · exposed allreduce · step | "
          "measured ms: compute · allreduce wait · SGD · step − data | predicted / measured |")
    print("|---|---|---|---|---|---|---|")
    for path in args.traces:
        m, n = measured(path, args.skip)
        if args.global_batch % n:
            raise SystemExit(f"scale-check.py: error: {path}: {n} ranks do not divide the global batch {args.global_batch}")
        c = table.get((args.arch, args.global_batch // n))
        if c is None:
            raise SystemExit(f"scale-check.py: error: no bench line for {args.arch} at batch {args.global_batch // n}")
        if n > 1 and alpha_n is None:
            raise SystemExit(f"scale-check.py: error: {path} has {n} ranks: give --allreduce")
        if n > 1 and ar_ranks != n:
            raise SystemExit(f"scale-check.py: error: {path} has {n} ranks, {args.allreduce} was measured at {ar_ranks}")
        share = max(1.0, (args.ranks_per_node or n) / args.cores_per_node) * (args.busy_factor if n > 1 else 1.0)
        # α₂ from α measured at n ranks: the ring pays (n−1)·α₂ (scale-model.py), so α₂ = α_n / (n−1).
        alpha2 = alpha_n / (n - 1) if n > 1 else 0.0
        step, exposed = model.step_seconds(c, n, alpha2, beta if n > 1 else 1.0, args.overlap, timeshare=share)
        name = os.path.basename(path)
        print(f"| {name} | {n} | {c.batch} | ×{share:g} | {1000 * (c.compute + c.optimizer) * share:.0f} · {1000 * exposed:.0f} · "
              f"{1000 * step:.0f} | {m['compute']:.0f} · {m['allreduce']:.0f} · {m['optimizer']:.0f} · {m['step']:.0f} | "
              f"{1000 * step / m['step']:.2f} |")


if __name__ == "__main__":
    main()
