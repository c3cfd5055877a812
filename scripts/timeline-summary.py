#!/usr/bin/env python3
"""Per-rank step summary of dann-dist --timeline traces: mean step time, img/s, compute and allreduce.

usage: timeline-summary.py [--skip N] [--images-per-step M] TRACE.json...
Steps 1..N are skipped (warm-up, first shard read). A step runs from its `data` span's start to the end
of its `optimizer` span; `allreduce` is the wait for the gradient sum (the whole call with --allreduce single;
with --allreduce shared the sums, and the wait for slower ranks, are inside `optimizer`).
With --accumulate K, compute is the sum of the K passes' spans (and --images-per-step should be 2·K·B).
"""
import argparse, collections, json

parser = argparse.ArgumentParser()
parser.add_argument("--skip", type=int, default=2)
parser.add_argument("--images-per-step", type=int, default=256, help="B source + B target (default 128 + 128)")
parser.add_argument("traces", nargs="+")
args = parser.parse_args()

for path in args.traces:
    events = json.load(open(path))["traceEvents"]
    for rank in sorted({e["pid"] for e in events}):
        # A step of --accumulate K has K data and K compute spans: keep the first data span (the step's start)
        # and sum the durations of each phase.
        steps = collections.defaultdict(dict)
        for e in events:
            if e["pid"] == rank and e["ph"] == "X":
                spans = steps[e["args"]["step"]]
                if e["name"] in spans:
                    first = spans[e["name"]]
                    spans[e["name"]] = dict(first, ts=min(first["ts"], e["ts"]), dur=first["dur"] + e["dur"])
                else:
                    spans[e["name"]] = e
        kept = sorted(s for s, spans in steps.items() if s > args.skip and "data" in spans and "optimizer" in spans)
        if not kept:
            print(f"{path} rank {rank}: no steps after --skip {args.skip}")
            continue
        def mean(values):
            return sum(values) / len(values) / 1000  # µs → ms
        step = mean([steps[s]["optimizer"]["ts"] + steps[s]["optimizer"]["dur"] - steps[s]["data"]["ts"] for s in kept])
        compute = mean([steps[s]["compute"]["dur"] for s in kept])
        reduce = mean([steps[s].get("allreduce", {"dur": 0})["dur"] for s in kept])
        print(f"{path} rank {rank}: steps {kept[0]}-{kept[-1]}  step {step:.0f} ms  {args.images_per_step / step * 1000:.1f} img/s"
              f"  compute {compute:.0f} ms  allreduce {reduce:.1f} ms ({100 * reduce / step:.1f}%)")
