#!/usr/bin/env python3
"""Summarises finished run folders as the rows of RESULTS.md's table.

    scripts/summarize-runs.py RUN_DIR... [--curves]

For each run: task, network, method, seed, the final source and target test accuracies (the last evaluation
in metrics.csv), the minutes spent in training steps (from each step's img/s; evaluations and checkpoints not included), and with --curves the target accuracy at every evaluation.
Runs that differ only in --seed are also summarised as mean ± spread (half the range).
"""
import csv, json, os, sys
from collections import defaultdict


def load(run):
    config = json.load(open(os.path.join(run, "config.json")))
    rows = list(csv.DictReader(open(os.path.join(run, "metrics.csv"))))
    source, target = config["source"], config["target"]
    evals = [r for r in rows if r.get(f"{target}_test_acc")]
    seconds = sum(2 * config["batchSize"] / float(r["images_per_s"]) if not config["sourceOnly"]
                  else config["batchSize"] / float(r["images_per_s"]) for r in rows if float(r["images_per_s"]) > 0)
    return {
        "run": run, "task": f"{source} → {target}", "arch": config["arch"], "seed": config["seed"],
        "method": "source only" if config["sourceOnly"] else "DANN", "epochs": config["epochs"],
        "target": float(evals[-1][f"{target}_test_acc"]) if evals else float("nan"),
        "source": float(evals[-1][f"{source}_test_acc"]) if evals and evals[-1].get(f"{source}_test_acc") else float("nan"),
        "curve": [(int(r["step"]), float(r[f"{target}_test_acc"])) for r in evals],
        "minutes": seconds / 60,
    }


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    runs = [load(r) for r in args]
    print("| task | network | method | seed | epochs | target test | source test | training minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for r in runs:
        percent = lambda v: "—" if v != v else f"{100 * v:.2f} %"   # NaN: that test set is absent
        print(f"| {r['task']} | {r['arch']} | {r['method']} | {r['seed']} | {r['epochs']} | {percent(r['target'])} "
              f"| {percent(r['source'])} | {r['minutes']:.1f} |")
    groups = defaultdict(list)
    for r in runs:
        groups[(r["task"], r["arch"], r["method"], r["epochs"])].append(r)
    print()
    for (task, arch, method, epochs), rs in groups.items():
        values = [100 * r["target"] for r in rs]
        mean = sum(values) / len(values)
        spread = (max(values) - min(values)) / 2
        print(f"{task}, {arch}, {method}, {epochs} epochs, seeds {', '.join(str(r['seed']) for r in rs)}: "
              f"target {mean:.2f} ± {spread:.2f} %")
    if "--curves" in sys.argv:
        print()
        for r in runs:
            print(f"{r['run']}: " + ", ".join(f"{s}: {100 * a:.1f}" for s, a in r["curve"]))


if __name__ == "__main__":
    main()
