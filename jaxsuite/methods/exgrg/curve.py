"""Validation curves outside ``reproduce``: a variant trained for ``--steps`` on each graph, with the linear
probe's accuracy on the public split's *validation* nodes (never the test nodes) every ``--every`` steps, per
seed and as the mean over seeds, for a setting's check on validation before it goes into a preset, e.g. BGRL's
lr (``--set optim.lr=5e-3``, README):

    python -m jaxsuite.methods.exgrg.curve --variant bgrl --steps 60 --every 20 --seeds 0 --datasets cora \
        --set optim.lr=5e-3

One run per (graph, seed), its budget-dependent schedule (BGRL's EMA decay, cosine-annealed to 1) set for the
full ``--steps``. In ``reproduce``, BGRL's own curve comes from its runs themselves (``bgrl.select_period``).
"""
from __future__ import annotations

import argparse
import json
import time

import jax
import numpy as np

from jaxsuite.core.config import load_config, set_key
from jaxsuite.methods.exgrg import experiment, train
from jaxsuite.methods.exgrg.probe import validation_accuracy


def validation_curve(config, variant: str, dataset: str, seed: int, *, steps: int, every: int) -> list[tuple[int, float]]:
    """[(step, public-split validation accuracy)] every ``every`` steps of one ``steps``-long run."""
    cfg = experiment.dataset_config(experiment.variant_config(config, variant), dataset)
    set_key(cfg, "steps", steps)
    set_key(cfg, "bgrl.steps", steps)
    set_key(cfg, "supervised.steps", steps)
    batch = experiment.load_batch(cfg)
    num_classes = cfg.data.num_classes
    state = train.init(cfg, jax.random.PRNGKey(seed))
    step = jax.jit(train.train_step, donate_argnums=0)
    curve = []
    for i in range(1, steps + 1):
        state, _ = step(state, batch)
        if i % every == 0 or i == steps:
            emb = train.embed(state, batch["x"], batch["graph"])
            curve.append((i, validation_accuracy(emb, batch["labels"], batch["train_mask"], batch["val_mask"],
                                                 num_classes=num_classes)))
    return curve


def markdown(curves: dict) -> str:
    """steps x graphs table of the mean (and per-seed) validation accuracy."""
    names = list(curves)
    steps = [s for s, _ in next(iter(curves[names[0]].values()))]
    lines = ["| steps | " + " | ".join(f"{n} val (mean; per seed)" for n in names) + " |",
             "|---" * (len(names) + 1) + "|"]
    for j, s in enumerate(steps):
        cells = []
        for n in names:
            accs = [c[j][1] for c in curves[n].values() if j < len(c)]
            cells.append(f"{np.mean(accs):.4f} ({' / '.join(f'{a:.3f}' for a in accs)})")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variant", default="bgrl")
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--datasets", default="cora,citeseer")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    ap.add_argument("--out", default=None, help="write the curves as JSON here")
    args = ap.parse_args(argv)
    config = load_config("exgrg", args.preset, args.overrides)
    seeds = [int(s) for s in args.seeds.split(",")]
    curves: dict[str, dict[int, list]] = {}
    for name in args.datasets.split(","):
        curves[name] = {}
        for seed in seeds:
            t0 = time.perf_counter()
            curves[name][seed] = validation_curve(config, args.variant, name, seed, steps=args.steps, every=args.every)
            print(f"{name} seed {seed}: {time.perf_counter() - t0:.0f} s; "
                  + " ".join(f"{s}:{a:.3f}" for s, a in curves[name][seed]), flush=True)
    table = markdown(curves)
    print(table)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"variant": args.variant, "preset": args.preset, "overrides": args.overrides,
                       "steps": args.steps, "every": args.every, "curves": curves, "table": table}, f, indent=1)


if __name__ == "__main__":
    main()
