"""The ghost-clipped DP step of this tree against the same step at an earlier git revision (default 9eeaf8b, the
ghost clipping before its norms were made safe against crafted cancellation, issue 33): the benchmark's MLP and
CNN (``dpsgd_vs_opacus.py``'s models, batch 256, clip 1, noise 1.1, SGD), one CPU device, the two versions
alternating in one process, medians over rounds of the ms per step.

    python benchmarks/ghost_vs_revision.py [--rev 9eeaf8b] [--rounds 11] [--json PATH]

The earlier ``jaxsuite/privacy/{ghost,ghost_rules,taps}.py`` are read with ``git show REV:PATH`` into a temporary
package (nothing is checked out). Not part of the tests."""
from __future__ import annotations

import argparse
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))


def load_revision(rev: str, where: Path):
    """``ghost`` of revision ``rev`` as the module ``ghost_at_rev.ghost`` (its imports of taps / ghost_rules
    rewritten to the copies beside it)."""
    package = where / "ghost_at_rev"
    package.mkdir()
    (package / "__init__.py").write_text("")
    for name in ("ghost", "ghost_rules", "taps"):
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:jaxsuite/privacy/{name}.py"], check=True,
                              capture_output=True, text=True).stdout
        for module in ("taps", "ghost_rules"):
            text = text.replace(f"from jaxsuite.privacy import {module}", f"from ghost_at_rev import {module}")
        text = text.replace("from jaxsuite.privacy.ghost_rules import", "from ghost_at_rev.ghost_rules import")
        (package / f"{name}.py").write_text(text)
    sys.path.insert(0, str(where))
    return importlib.import_module("ghost_at_rev.ghost")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rev", default="9eeaf8b", help="the earlier revision (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args()

    import dpsgd_vs_opacus as bench
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    from jaxsuite.privacy import dpsgd
    from jaxsuite.privacy import ghost as this_ghost

    with tempfile.TemporaryDirectory() as tmp:
        versions = {"rev": load_revision(args.rev, Path(tmp)), "this": this_ghost}
        out = {"rev": args.rev, "commit": subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                                                         capture_output=True, text=True).stdout.strip()}
        for name, cls in (("mlp", bench.JaxMLP), ("cnn", bench.JaxCNN)):
            graphdef, params, rest = nnx.split(cls(nnx.Rngs(0)), nnx.Param, ...)

            def loss(p, batch, graphdef=graphdef, rest=rest):
                logits = nnx.merge(graphdef, p, rest)(batch["x"])
                return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]))

            rng = np.random.default_rng(0)
            x = rng.uniform(size=(bench.BATCH, 1, 28, 28)).astype(np.float32)
            batch = {"x": bench.jax_input(name, x), "y": jnp.asarray(rng.integers(0, 10, bench.BATCH), jnp.int32)}
            tx = optax.chain(dpsgd.dp_noise(bench.CLIP, 1.1, bench.BATCH, jax.random.key(0)), optax.sgd(bench.LR))
            steps, state = {}, {}
            for label, module in versions.items():
                clipped = module.ghost_clipped_grad_sum(loss, bench.CLIP)

                def step(p, o, b, clipped=clipped, tx=tx):
                    updates, o = tx.update(clipped(p, b), o, p)
                    return optax.apply_updates(p, updates), o

                steps[label], state[label] = jax.jit(step), (params, tx.init(params))
                for _ in range(5):
                    state[label] = steps[label](*state[label], batch)
                jax.block_until_ready(state[label])
            n = 20 if name == "mlp" else 8
            times = {label: [] for label in steps}
            for r in range(args.rounds):
                for label in (("rev", "this") if r % 2 == 0 else ("this", "rev")):
                    t0 = time.perf_counter()
                    for _ in range(n):
                        state[label] = steps[label](*state[label], batch)
                    jax.block_until_ready(state[label])
                    times[label].append((time.perf_counter() - t0) / n * 1e3)
            ratios = [b / a for a, b in zip(times["rev"], times["this"])]
            out[name] = {"rev_ms": statistics.median(times["rev"]), "this_ms": statistics.median(times["this"]),
                         "ratio_of_medians": statistics.median(times["this"]) / statistics.median(times["rev"]),
                         "median_per_round_ratio": statistics.median(ratios), "rounds": times}
            print(f"{name}: {args.rev} {out[name]['rev_ms']:.2f} ms, this tree {out[name]['this_ms']:.2f} ms, "
                  f"ratio {out[name]['ratio_of_medians']:.3f} (median per-round ratio "
                  f"{out[name]['median_per_round_ratio']:.3f}, {args.rounds} rounds)")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
