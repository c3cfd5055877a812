#!/usr/bin/env python3
"""Times PyTorch's CPU build on the same DANN training step that `dann-dist bench` times: the README's
`nn.Sequential` presets, B source + B target random images, E on each domain (one call on the joint batch
for the networks without batch norm, one call per domain with it, as dann-dist normalises each domain
apart), G_c on the source features (and the target's, with batch norm, so its statistics see them, as
dann-dist does), G_d behind the gradient reversal layer, label loss + both domain means, backward, SGD with
momentum 0.9 and weight decay 1e-5.

    scripts/bench-pytorch.py --arch small --threads 2 --steps 10 [--json] [--profile]

Prints ms/step and img/s (2B images per step); --json adds cpu_step_s, the process's CPU time per step
(at one thread, immune to other load); --profile adds the top operators by self CPU time.
Needs `pip install torch` (CPU wheels are enough).
"""
import argparse, json, time

import torch
import torch.nn as nn
import torch.nn.functional as F


def presets(arch):
    if arch == 'small':
        E = nn.Sequential(nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2))
        C = nn.Sequential(nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
        D = nn.Sequential(nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 2))
        return E, C, D, 28
    if arch == 'small-bn':
        E = nn.Sequential(nn.Conv2d(3, 32, 5), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(32, 48, 5), nn.BatchNorm2d(48), nn.ReLU(), nn.MaxPool2d(2), nn.Dropout2d(0.5))
        C = nn.Sequential(nn.Linear(768, 100), nn.BatchNorm1d(100), nn.ReLU(),
                          nn.Linear(100, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Linear(100, 10))
        D = nn.Sequential(nn.Linear(768, 100), nn.BatchNorm1d(100), nn.ReLU(), nn.Linear(100, 2))
        return E, C, D, 28
    if arch == 'seed':
        E = nn.Sequential(nn.Conv2d(3, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(64, 64, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(64, 128, 5, padding=2), nn.ReLU(), nn.Dropout(0.5))
        C = nn.Sequential(nn.Linear(6272, 3072), nn.ReLU(), nn.Linear(3072, 2048), nn.ReLU(), nn.Linear(2048, 10))
        D = nn.Sequential(nn.Linear(6272, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 2))
        return E, C, D, 28
    if arch == 'seed-bn':
        E = nn.Sequential(nn.Conv2d(3, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(64, 64, 5, padding=2), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1),
                          nn.Conv2d(64, 128, 5, padding=2), nn.BatchNorm2d(128), nn.ReLU(), nn.Dropout2d(0.5))
        C = nn.Sequential(nn.Linear(6272, 3072), nn.BatchNorm1d(3072), nn.ReLU(),
                          nn.Linear(3072, 2048), nn.BatchNorm1d(2048), nn.ReLU(), nn.Linear(2048, 10))
        D = nn.Sequential(nn.Linear(6272, 1024), nn.BatchNorm1d(1024), nn.ReLU(),
                          nn.Linear(1024, 1024), nn.BatchNorm1d(1024), nn.ReLU(), nn.Linear(1024, 2))
        return E, C, D, 28
    raise SystemExit(f'bench-pytorch.py: unknown --arch {arch}')


class GradientReversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, g):
        return -ctx.lam * g, None


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--arch', default='small')
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--batch-size', type=int, default=128)
    p.add_argument('--steps', type=int, default=10)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--json', action='store_true')
    p.add_argument('--profile', action='store_true')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    E, C, D, side = presets(a.arch)
    bn = a.arch.endswith('-bn')
    params = list(E.parameters()) + list(C.parameters()) + list(D.parameters())
    sgd = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=1e-5)
    b = a.batch_size
    xs, xt = torch.rand(b, 3, side, side), torch.rand(b, 3, side, side)
    ys = torch.randint(0, 10, (b,))
    zeros, ones = torch.zeros(b, dtype=torch.long), torch.ones(b, dtype=torch.long)
    for m in (E, C, D):
        m.train()

    def step():
        sgd.zero_grad(set_to_none=True)
        if bn:
            fs, ft = E(xs).flatten(1), E(xt).flatten(1)
            label = F.cross_entropy(C(fs), ys)
            C(ft.detach())      # running statistics only, no loss (dann-dist runs G_c on the target rows too)
            ds, dt = D(GradientReversal.apply(fs, 0.5)), D(GradientReversal.apply(ft, 0.5))
        else:
            f = E(torch.cat([xs, xt])).flatten(1)
            label = F.cross_entropy(C(f[:b]), ys)
            d = D(GradientReversal.apply(f, 0.5))
            ds, dt = d[:b], d[b:]
        loss = label + F.cross_entropy(ds, zeros) + F.cross_entropy(dt, ones)
        loss.backward()
        sgd.step()

    for _ in range(a.warmup):
        step()
    start, cpu = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    seconds = (time.perf_counter() - start) / a.steps
    # CPU time of the whole process per step: at one thread, the step's compute time without the time other
    # processes (or the hypervisor) held the core; with more threads it also counts idle workers' spinning.
    cpu_seconds = (time.process_time() - cpu) / a.steps
    result = {'arch': a.arch, 'threads': a.threads, 'batch_size': b, 'steps': a.steps, 'step_s': seconds,
              'cpu_step_s': cpu_seconds,
              'images_per_s': 2 * b / seconds, 'torch': torch.__version__,
              'mkldnn': torch.backends.mkldnn.is_available(), 'mkl': torch.backends.mkl.is_available(),
              'aten_isa': torch.backends.cpu.get_cpu_capability()}
    if a.json:
        print(json.dumps(result))
    else:
        print(f"pytorch {torch.__version__}  arch {a.arch}  batch {b}+{b}  threads {a.threads}  "
              f"{seconds * 1000:.1f} ms/step  {2 * b / seconds:.1f} img/s")
    if a.profile:
        from torch.profiler import profile, ProfilerActivity
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        print(prof.key_averages().table(sort_by='self_cpu_time_total', row_limit=25))


if __name__ == '__main__':
    main()
