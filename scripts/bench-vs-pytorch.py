#!/usr/bin/env python3
"""dann-dist against PyTorch on the same training step and the same CPU, alternating runs so that the
machine's background load hits both alike. For each network, ROUNDS pairs: `dann-dist bench` then
`scripts/bench-pytorch.py`, same batch and threads; prints each pair's img/s and ratio, and the median
ratio (the figure to quote), with the CPU model.

    scripts/bench-vs-pytorch.py [--python PY] [--bin .build/release/dann-dist] [--threads 2] [--rounds 4]
                                [--steps 10] [--archs small,small-bn,seed,seed-bn] [--markdown] [--isa avx2]

PY is a Python with torch installed (e.g. a venv's bin/python after `pip install torch`). With --cpu-clock
(one thread only) both sides are timed by CPU time — dann-dist's `--thread-clock`, PyTorch's process time —
which leaves out the time other processes or the hypervisor held the core: steady on a shared machine.

--isa avx2 holds both sides to AVX2 + FMA on an AVX-512 CPU, a stand-in for an AVX2-only CPU such as the AMD
EPYC: dann-dist with OpenBLAS's Haswell kernels and the kernel choices it makes where AVX-512 is missing,
PyTorch with ATen, oneDNN and MKL capped at AVX2. The figures are the AVX-512 core's, not the EPYC's.
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
p.add_argument('--isa', choices=['native', 'avx2'], default='native')
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


# What each side would choose on a CPU without AVX-512: dann-dist's direct convolution and Winograd kernels in
# their AVX2 versions (DANN_CONV_ISA=1, DANN_CONV_WINOGRAD=1); OpenBLAS's Zen kernels are its Haswell ones.
avx2_env = {'ours': {'OPENBLAS_CORETYPE': 'Haswell', 'DANN_CONV_ISA': '1', 'DANN_CONV_WINOGRAD': '1'},
            'theirs': {'ATEN_CPU_CAPABILITY': 'avx2', 'ONEDNN_MAX_CPU_ISA': 'AVX2', 'MKL_ENABLE_INSTRUCTIONS': 'AVX2'}}


def run(command, side):
    env = dict(os.environ, **(avx2_env[side] if a.isa == 'avx2' else {}))
    return json.loads(subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout)


clock = 'CPU time per step' if a.cpu_clock else 'wall time per step'
held = '; held to AVX2 (--isa avx2)' if a.isa == 'avx2' else ''
print(f'CPU: {cpu()}{held}; threads {a.threads}; batch {a.batch_size}+{a.batch_size}; {a.rounds} alternating rounds; {clock}')
rows = []
for arch in a.archs.split(','):
    ours, theirs = [], []
    for _ in range(a.rounds):
        mine = run([a.bin, 'bench', '--arch', arch, '--threads', a.threads, '--batch-size', a.batch_size,
                    '--steps', a.steps, '--warmup', '2', '--peak-size', '0', '--json'] + (['--thread-clock'] if a.cpu_clock else []), 'ours')
        kernels = (mine['blas_kernels'], mine['conv_kernels'], mine['winograd_kernels'])
        if a.isa == 'avx2' and kernels != ('Haswell', 'avx2', 'avx2'):
            sys.exit(f"bench-vs-pytorch.py: dann-dist ran {'/'.join(kernels)}, not AVX2")
        ours.append(mine['images_per_s'])
        torch_run = run([a.python, os.path.join(here, 'bench-pytorch.py'), '--arch', arch, '--threads', a.threads,
                         '--batch-size', a.batch_size, '--steps', a.steps, '--json'], 'theirs')
        if a.isa == 'avx2' and torch_run['aten_isa'] != 'AVX2':
            sys.exit(f"bench-vs-pytorch.py: PyTorch ran {torch_run['aten_isa']}, not AVX2")
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
