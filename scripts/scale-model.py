#!/usr/bin/env python3
"""Scale model of dann-dist's data-parallel step past one machine (docs/performance.md).

usage: scale-model.py --compute BENCH.jsonl [--alpha-us A] [--links 10,25,100] [--efficiency 0.9]
                      [--ranks 2,4,...] [--arch seed,small] [--scaling weak|strong|both] [--per-rank-batch 128]
                      [--global-batch 128] [--overlap buckets|none|both] [--bucket-mb 25] [--gradient-bytes 4|2]
                      [--busy-factor F] [--accumulate K] [--json]

--compute: lines of `dann-dist bench --threads 1 --json` (any presets, a line per per-rank batch size, or several
from repeated rounds, of which the median is used; strong scaling needs the batches global/n). Per rank and step
the model takes from them: compute (forward +
backward, the `phases_ms` other than the optimizer), the SGD update, the parameter count (gradient bytes =
parameters × --gradient-bytes), when backward hands each gradient range over (`gradient_ready`), and batch
norm's blocking reductions (`statistics_allreduces_per_step`).

The model, for n ranks of one BLAS thread each, α₂ the latency of one allreduce between 2 ranks and β the
bytes/s of a link (rate × --efficiency):
  gradient allreduce (ring):     T_ar(bytes) = (n−1)·α₂ + 2(n−1)/n · bytes / β
  small blocking allreduce:      T_s = ⌈log₂ n⌉ · α₂      (recursive doubling; batch norm's sums, the step's losses)
  step, --overlap none:          T = compute + s·T_s + T_ar(all gradients) + SGD      (s small reductions)
  step, --overlap buckets:       gradient ranges are grouped into buckets of --bucket-mb in backward order (as
                                 GradientSync does); bucket i starts when its last range is ready and the previous
                                 bucket is done, and runs in the background (the network moves it while the cores
                                 compute); T = max(compute end, last bucket end) + SGD.
  with ranks-per-node > cores-per-node, compute and SGD are time-shared: × ranks-per-node / cores-per-node;
  --busy-factor multiplies them too (a rank computes slower when its neighbours use the other cores).
  --accumulate K (gradient accumulation): K passes of compute, one allreduce (bucketed during the last pass), one SGD.
Weak scaling: per-rank batch fixed, global batch n × K × it; efficiency = T(1 rank, no communication) / T(n).
Strong scaling: global batch fixed, per-rank batch global/n; efficiency = T(1 rank, global batch) / (n · T(n)).
"""
import argparse, json, math, sys

MiB = 1 << 20


def parse_list(text, kind):
    try:
        values = [kind(v) for v in text.split(",") if v]
    except ValueError:
        raise SystemExit(f"scale-model.py: error: cannot read '{text}' as a comma-separated list")
    if not values:
        raise SystemExit(f"scale-model.py: error: empty list '{text}'")
    return values


class Compute:
    """One `bench --json` line: a preset at one per-rank batch size, times in seconds."""

    def __init__(self, record, source):
        try:
            phases = record["phases_ms"]
            self.arch = record["arch"]
            self.batch = int(record["batch_size"])
            self.optimizer = phases["optimizer"] / 1000
            self.compute = sum(ms for name, ms in phases.items() if name != "optimizer") / 1000
            self.parameters = int(record["parameters"])
            self.ready = [(r["ms"] / 1000, int(r["floats"])) for r in record["gradient_ready"]]
            self.syncs = int(record["statistics_allreduces_per_step"])
            self.threads = int(record.get("threads", 1))
        except (KeyError, TypeError, ValueError) as e:
            raise SystemExit(f"scale-model.py: error: {source}: not a `dann-dist bench --json` line with {e}")
        if sum(f for _, f in self.ready) != self.parameters:
            raise SystemExit(f"scale-model.py: error: {source}: gradient_ready does not cover the {self.parameters} parameters")


def load_compute(paths):
    """(arch, batch) → Compute; of several lines for the same pair (repeated rounds on a noisy machine) the one
    with the median step time (the lower middle one for an even count)."""
    lines = {}
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        record = json.loads(line)
                    except ValueError:
                        raise SystemExit(f"scale-model.py: error: {path}:{number}: not JSON")
                    c = Compute(record, f"{path}:{number}")
                    lines.setdefault((c.arch, c.batch), []).append(c)
    return {key: sorted(cs, key=lambda c: c.compute + c.optimizer)[(len(cs) - 1) // 2] for key, cs in lines.items()}


def ring_seconds(nbytes, n, alpha2, beta):
    """Ring allreduce: 2(n−1) steps, α₂ being the two steps of n = 2. `beta` is bytes/s, or a function of the
    message size giving it (shared memory is slower per byte out of cache)."""
    if n <= 1:
        return 0.0
    rate = beta(nbytes) if callable(beta) else beta
    return (n - 1) * alpha2 + 2 * (n - 1) / n * nbytes / rate


def small_seconds(n, alpha2):
    """A latency-bound allreduce (recursive doubling): ⌈log₂ n⌉ exchanges, α₂ each."""
    return math.ceil(math.log2(n)) * alpha2 if n > 1 else 0.0


def step_seconds(c, n, alpha2, beta, overlap="buckets", bucket_mb=25.0, gradient_bytes=4, timeshare=1.0, passes=1):
    """One step of rank time for the preset and per-rank batch of `c` on n ranks: (step, exposed allreduce).
    With `passes` K > 1 (gradient accumulation) the rank computes K passes and reduces once, during the last."""
    compute, optimizer = c.compute * timeshare, c.optimizer * timeshare
    # Batch norm's reductions (every pass) and the losses' sum block the rank: they lengthen compute and delay
    # every gradient range.
    blocking = (passes * c.syncs + 1) * small_seconds(n, alpha2)
    end = passes * compute + blocking
    if n == 1:
        return passes * compute + optimizer, 0.0
    if overlap == "none":
        exposed = ring_seconds(c.parameters * gradient_bytes, n, alpha2, beta)
        return end + exposed + optimizer, exposed
    bucket_floats = max(1, int(bucket_mb * MiB) // 4)
    earlier = (passes - 1) * compute  # the passes before the last, whose gradients are not final yet
    buckets, pending = [], 0
    for ms, floats in c.ready:
        pending += floats
        if pending >= bucket_floats:
            buckets.append((earlier + ms * timeshare + blocking, pending))
            pending = 0
    if pending:
        buckets.append((end, pending))  # the rest goes when backward ends (GradientSync.finish)
    free = 0.0
    for ready, floats in buckets:
        free = max(ready, free) + ring_seconds(floats * gradient_bytes, n, alpha2, beta)
    exposed = max(0.0, free - end)
    return end + exposed + optimizer, exposed


def bench_line(table, arch, batch):
    c = table.get((arch, batch))
    if c is None:
        raise SystemExit(f"scale-model.py: error: no bench line for {arch} at batch {batch}")
    return c


def rows(table, arch, scaling, ranks, links, args):
    """One row per n: the per-rank work, the allreduce and, per link, step, img/s and efficiency (under
    args.overlap; with "both", without overlap and, as overlap_*, with buckets)."""
    k = args.accumulate
    if scaling == "weak":
        base = bench_line(table, arch, args.per_rank_batch)
        reference = k * base.compute + base.optimizer  # one rank alone: no communication, no busy neighbours
    else:
        single = bench_line(table, arch, args.global_batch)
        reference = single.compute + single.optimizer
    out = []
    for n in ranks:
        if scaling == "weak":
            c, global_batch = base, args.per_rank_batch * n * k
        else:
            if args.global_batch % n:
                continue
            c, global_batch = bench_line(table, arch, args.global_batch // n), args.global_batch
        row = {"arch": arch, "scaling": scaling, "ranks": n, "per_rank_batch": c.batch, "global_batch": global_batch,
               "accumulate": k, "compute_ms": 1000 * (k * c.compute + c.optimizer),
               "gradient_mb": c.parameters * args.gradient_bytes / 1e6, "links": []}
        ideal = reference if scaling == "weak" else reference / n
        for rate in links:
            beta = rate * 1e9 / 8 * args.efficiency
            entry = {"gbps": rate, "allreduce_ms": 1000 * ring_seconds(c.parameters * args.gradient_bytes, n, args.alpha_us * 1e-6, beta)}
            modes = [("", "none"), ("overlap_", "buckets")] if args.overlap == "both" else [("", args.overlap)]
            for prefix, mode in modes:
                step, exposed = step_seconds(c, n, args.alpha_us * 1e-6, beta, mode, args.bucket_mb, args.gradient_bytes,
                                             args.busy_factor, k)
                entry.update({prefix + "exposed_ms": 1000 * exposed, prefix + "step_ms": 1000 * step,
                              prefix + "images_per_s": 2 * global_batch / step, prefix + "efficiency": ideal / step})
            row["links"].append(entry)
        out.append(row)
    return out


def ms(x):
    """Milliseconds to three figures or so: 1481, 61.3, 4.52."""
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}" if x >= 10 else f"{x:.2f}"


def markdown(all_rows, links, overlap):
    both = overlap == "both"
    head = ["n", "batch/rank", "compute+SGD ms", "allreduce ms " + "/".join(f"{r:g}" for r in links)]
    head += [f"{r:g} Gb/s: step ms · img/s · eff" + (" (eff with overlap)" if both else "") for r in links]
    lines = []
    for key in dict.fromkeys((r["arch"], r["scaling"]) for r in all_rows):
        group = [r for r in all_rows if (r["arch"], r["scaling"]) == key]
        g = group[0]
        size = f"per-rank batch {g['per_rank_batch']}" if key[1] == "weak" else f"global batch {g['global_batch']}"
        passes = f", {g['accumulate']} passes a step" if g["accumulate"] > 1 else ""
        title = (f"{key[0]}, {key[1]} scaling ({size} + as many target images{passes}; "
                 f"{g['gradient_mb']:.1f} MB of gradients)")
        lines += ["", f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in group:
            cells = [str(r["ranks"]), str(r["per_rank_batch"]), ms(r["compute_ms"]),
                     " / ".join(f"{l['allreduce_ms']:.1f}" for l in r["links"])]
            for l in r["links"]:
                cell = f"{ms(l['step_ms'])} · {l['images_per_s']:.0f} · {100 * l['efficiency']:.0f} %"
                cells.append(cell + (f" ({100 * l['overlap_efficiency']:.0f} %)" if both else ""))
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines).lstrip("\n")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compute", nargs="+", required=True, help="files of `dann-dist bench --threads 1 --json` lines")
    p.add_argument("--alpha-us", type=float, default=50.0, help="α₂: one allreduce between 2 ranks over the network, µs")
    p.add_argument("--links", default="10,25,100", help="link rates, Gb/s")
    p.add_argument("--efficiency", type=float, default=0.9, help="β = link rate × this")
    p.add_argument("--ranks", default="2,4,8,16,32,64")
    p.add_argument("--arch", default=None, help="presets to tabulate (default: every one in --compute)")
    p.add_argument("--scaling", choices=["weak", "strong", "both"], default="both")
    p.add_argument("--per-rank-batch", type=int, default=128, help="weak scaling: source images per rank and step")
    p.add_argument("--global-batch", type=int, default=128, help="strong scaling: source images per step in all")
    p.add_argument("--overlap", choices=["buckets", "none", "both"], default="buckets",
                   help="both: step without overlap, and the efficiency with buckets beside it")
    p.add_argument("--accumulate", type=int, default=1, help="K passes per step, one allreduce (weak scaling only)")
    p.add_argument("--bucket-mb", type=float, default=25.0)
    p.add_argument("--gradient-bytes", type=int, choices=[2, 4], default=4, help="bytes per exchanged gradient (2: bf16/fp16)")
    p.add_argument("--busy-factor", type=float, default=1.0,
                   help="compute × this when every core of a node computes (bench runs alone; 1.0–1.15 measured here)")
    p.add_argument("--json", action="store_true", help="one JSON object per row instead of markdown")
    args = p.parse_args(argv)
    if args.alpha_us < 0 or not 0 < args.efficiency <= 1 or args.bucket_mb <= 0 or args.busy_factor < 1:
        p.error("--alpha-us must be ≥ 0, --efficiency in (0, 1], --bucket-mb > 0, --busy-factor ≥ 1")
    if args.accumulate < 1 or (args.accumulate > 1 and args.scaling != "weak"):
        p.error("--accumulate must be ≥ 1, and above 1 only with --scaling weak")
    links, ranks = parse_list(args.links, float), parse_list(args.ranks, int)
    if any(r <= 0 for r in links) or any(n < 1 for n in ranks):
        p.error("--links and --ranks must be positive")
    table = load_compute(args.compute)
    archs = parse_list(args.arch, str) if args.arch else list(dict.fromkeys(a for a, _ in table))
    scalings = ["weak", "strong"] if args.scaling == "both" else [args.scaling]
    all_rows = [r for a in archs for s in scalings for r in rows(table, a, s, ranks, links, args)]
    if args.json:
        for r in all_rows:
            print(json.dumps(r, sort_keys=True))
    else:
        print(markdown(all_rows, links, args.overlap))


if __name__ == "__main__":
    main()
