#!/usr/bin/env python3
"""dann-dist against PyTorch on the same training step and the same CPU, alternating runs so that the
machine's background load hits both alike. For each network, ROUNDS pairs: `dann-dist bench` then
`scripts/bench-pytorch.py`, same batch and threads; prints each pair's img/s and ratio, and the median
ratio (the figure to quote), with the CPU model.

    scripts/bench-vs-pytorch.py [--python PY] [--bin .build/release/dann-dist] [--threads 2] [--rounds 4]
                                [--steps 10] [--archs small,small-bn,seed,seed-bn] [--markdown]

PY is a Python with torch installed (e.g. a venv's bin/python after `pip install torch`). With --cpu-clock
(one thread only) both sides are timed by CPU time — dann-dist's `--thread-clock`, PyTorch's process time —
which leaves out the time other processes or the hypervisor held the core: steady on a shared machine.
"""
import argparse, json, os, statistics, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
p = argparse.ArgumentParser()
p.add_argument('--python', default=sys.executable)
p.add_argument('--bin', default='.build/release/dann-dist')
p.add_argument('--threads', default='2')
p.add_argument('--rounds', type=int, default=4)
p.add_argument('--steps', default='10')
p.add_argument('--batch-size', default='128')
p.add_argument('--archs', default='small,small-bn,seed,seed-bn')
p.add_argument('--markdown', action='store_true')
p.add_argument('--cpu-clock', action='store_true')
a = p.parse_args()
if a.cpu_clock and a.threads != '1':
    sys.exit('bench-vs-pytorch.py: --cpu-clock needs --threads 1')


def cpu():
    model = family = number = '?'
    for line in open('/proc/cpuinfo'):
        key, _, value = line.partition(':')
        key, value = key.strip(), value.strip()
        if key == 'model name': model = value
        elif key == 'cpu family': family = value
        elif key == 'model': number = value
        elif key == 'flags':
            flags = value.split()
            break
    isa = 'AVX-512' if 'avx512f' in flags else 'AVX2' if 'avx2' in flags else 'SSE'
    return f'{model} (family {family} model {number}, {isa}, {os.cpu_count()} CPUs)'


def run(command):
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


clock = 'CPU time per step' if a.cpu_clock else 'wall time per step'
print(f'CPU: {cpu()}; threads {a.threads}; batch {a.batch_size}+{a.batch_size}; {a.rounds} alternating rounds; {clock}')
rows = []
for arch in a.archs.split(','):
    ours, theirs = [], []
    for _ in range(a.rounds):
        mine = run([a.bin, 'bench', '--arch', arch, '--threads', a.threads, '--batch-size', a.batch_size,
                    '--steps', a.steps, '--warmup', '2', '--peak-size', '0', '--json'] + (['--thread-clock'] if a.cpu_clock else []))
        ours.append(mine['images_per_s'])
        torch_run = run([a.python, os.path.join(here, 'bench-pytorch.py'), '--arch', arch, '--threads', a.threads,
                         '--batch-size', a.batch_size, '--steps', a.steps, '--json'])
        theirs.append(2 * int(a.batch_size) / torch_run['cpu_step_s'] if a.cpu_clock else torch_run['images_per_s'])
    ratios = [o / t for o, t in zip(ours, theirs)]
    rows.append((arch, ours, theirs, ratios))
    print(f'{arch:9} dann-dist {min(ours):7.1f}–{max(ours):7.1f} img/s   PyTorch {min(theirs):7.1f}–{max(theirs):7.1f} img/s   '
          f'ratios {", ".join(f"{r:.2f}" for r in ratios)}   median {statistics.median(ratios):.2f}', flush=True)
if a.markdown:
    print('\n| network | dann-dist img/s | PyTorch img/s | ratio per pair | median |\n|---|---|---|---|---|')
    for arch, ours, theirs, ratios in rows:
        print(f'| {arch} | {min(ours):.0f}–{max(ours):.0f} | {min(theirs):.0f}–{max(theirs):.0f} | '
              f'{", ".join(f"{r:.2f}" for r in ratios)} | {statistics.median(ratios):.2f} |')
