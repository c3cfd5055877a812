#!/usr/bin/env python3
"""A/B timing on a shared, noisy machine: runs several `dann-dist bench` variants in alternation for a
number of rounds and prints, per variant, the min and median ms/step and the best run's phases.

    scripts/bench-compare.py --arch seed --threads 1 --rounds 4 \\
        "old=/tmp/dann-dist-old --thread-clock" "new=.build/release/dann-dist --thread-clock"

Each variant is label=command (the binary, then extra bench flags). With --threads 1, add
--thread-clock to each command: CPU time of the one working thread ignores other processes' load.
"""
import argparse, json, shlex, subprocess

parser = argparse.ArgumentParser()
parser.add_argument('--arch', default='seed')
parser.add_argument('--threads', default='2')
parser.add_argument('--rounds', type=int, default=4)
parser.add_argument('--steps', default='3')
parser.add_argument('--layers', default='', help='comma-separated substrings of layer names to print (min over runs)')
parser.add_argument('variants', nargs='+')
a = parser.parse_args()

variants = [v.split('=', 1) for v in a.variants]
runs = {label: [] for label, _ in variants}
for _ in range(a.rounds):
    for label, command in variants:
        args = shlex.split(command)
        out = subprocess.run([args[0], 'bench', '--arch', a.arch, '--threads', a.threads, '--steps', a.steps,
                              '--warmup', '1', '--peak-size', '0', '--json'] + args[1:],
                             capture_output=True, text=True, check=True).stdout
        runs[label].append(json.loads(out))
for label, results in runs.items():
    times = sorted(r['step_s'] * 1000 for r in results)
    best = min(results, key=lambda r: r['step_s'])
    phases = ', '.join(f"{k} {v:.1f}" for k, v in best['phases_ms'].items())
    print(f"{label:12} min {times[0]:8.1f}  median {times[len(times) // 2]:8.1f} ms/step   best: {phases}")
    if a.layers:
        keys = a.layers.split(',')
        layer_min = {}
        for r in results:
            for k, v in r['layers_ms'].items():
                layer_min[k] = min(layer_min.get(k, float('inf')), v)
        print('   ', ', '.join(f"{k} {v:.1f}" for k, v in layer_min.items() if any(s in k for s in keys)))
