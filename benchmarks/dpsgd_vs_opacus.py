"""DP-SGD step speed: jaxsuite (jax-privacy's vmap clipping + Gaussian noise, jitted) against Opacus (PyTorch CPU,
its hook-based and ghost-clipping modes), on the same models with identical weights.

Models: an MLP 784-256-10 and the MNIST CNN of Opacus' and TF Privacy's tutorials (conv 16@8x8 stride 2 pad 3,
max-pool 2/1, conv 32@4x4 stride 2, max-pool 2/1, dense 32, dense 10). Batch 256, clip 1.0, noise 1.1. The runs
alternate (jaxsuite, Opacus hooks, Opacus ghost, repeat) so that machine load affects all alike. Before timing,
a check with noise off: every implementation's clipped gradient sum over the same batch must agree.

    pip install -e ".[bench]"          # torch and opacus
    python benchmarks/dpsgd_vs_opacus.py --steps 20 --rounds 3

Not part of the tests; prints a table and writes benchmarks/results/dpsgd_vs_opacus.json.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.privacy import dpsgd

BATCH, CLIP, NOISE = 256, 1.0, 1.1


# ------------------------------------------------------------------------------------------ models ----

class JaxMLP(nnx.Module):
    def __init__(self, rngs):
        self.fc1, self.fc2 = nnx.Linear(784, 256, rngs=rngs), nnx.Linear(256, 10, rngs=rngs)

    def __call__(self, x):
        return self.fc2(jax.nn.relu(self.fc1(x.reshape((x.shape[0], -1)))))


class JaxCNN(nnx.Module):
    def __init__(self, rngs):
        self.conv1 = nnx.Conv(1, 16, (8, 8), strides=2, padding=((3, 3), (3, 3)), rngs=rngs)
        self.conv2 = nnx.Conv(16, 32, (4, 4), strides=2, padding="VALID", rngs=rngs)
        self.fc1, self.fc2 = nnx.Linear(32 * 4 * 4, 32, rngs=rngs), nnx.Linear(32, 10, rngs=rngs)

    def __call__(self, x):  # NHWC
        x = nnx.max_pool(jax.nn.relu(self.conv1(x)), (2, 2), (1, 1))
        x = nnx.max_pool(jax.nn.relu(self.conv2(x)), (2, 2), (1, 1))
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape((x.shape[0], -1))  # flatten in torch's NCHW order
        return self.fc2(jax.nn.relu(self.fc1(x)))


def torch_models():
    import torch.nn as tnn
    import torch.nn.functional as F

    class TorchMLP(tnn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = tnn.Linear(784, 256), tnn.Linear(256, 10)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    class TorchCNN(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1, self.conv2 = tnn.Conv2d(1, 16, 8, 2, padding=3), tnn.Conv2d(16, 32, 4, 2)
            self.fc1, self.fc2 = tnn.Linear(32 * 4 * 4, 32), tnn.Linear(32, 10)

        def forward(self, x):  # NCHW
            x = F.max_pool2d(F.relu(self.conv1(x)), 2, 1)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2, 1)
            return self.fc2(F.relu(self.fc1(x.flatten(1))))

    return {"mlp": TorchMLP, "cnn": TorchCNN}


def copy_weights(torch_model, jax_model) -> None:
    """Torch's weights into the NNX model: Linear W^T, Conv OIHW -> HWIO."""
    for name, module in torch_model.named_children():
        target = getattr(jax_model, name)
        w = module.weight.detach().numpy()
        target.kernel.value = jnp.asarray(w.T if w.ndim == 2 else w.transpose(2, 3, 1, 0))
        target.bias.value = jnp.asarray(module.bias.detach().numpy())


# --------------------------------------------------------------------------------------- steps ----

def jax_step(model, noise: float):
    graphdef, params = nnx.split(model)

    def loss(p, batch):  # a batch of one inside clipped_grad
        logits = nnx.merge(graphdef, p)(batch["x"])
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]))

    grad_fn = dpsgd.clipped_grad_sum(loss, CLIP)
    tx = optax.chain(dpsgd.dp_noise(CLIP, noise, BATCH, jax.random.key(0)), optax.sgd(0.05))

    @jax.jit
    def step(params, opt_state, batch):
        updates, opt_state = tx.update(grad_fn(params, batch), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return step, params, tx.init(params), jax.jit(grad_fn)


def opacus_step(model_cls, state_dict, mode: str, noise: float, x, y):
    import torch
    from opacus import PrivacyEngine

    model = model_cls()
    model.load_state_dict(state_dict)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    criterion = torch.nn.CrossEntropyLoss(reduction="sum")
    engine = PrivacyEngine()
    kwargs = dict(module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise, max_grad_norm=CLIP,
                  poisson_sampling=False, loss_reduction="sum", grad_sample_mode=mode)
    if mode == "ghost":
        model, optimizer, criterion, loader = engine.make_private(criterion=criterion, **kwargs)
    else:
        model, optimizer, loader = engine.make_private(**kwargs)

    def step():
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()

    def clipped_sum():  # noise off: p.grad after pre_step is the clipped sum / expected batch size
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.pre_step()
        return [p.grad.detach().numpy() * BATCH for p in model.parameters()]

    return step, clipped_sum


def check_same_clipped_sum(name, model_cls, jax_model, torch_sd, xn, yn, modes) -> dict:
    import torch

    _, params, _, grad_fn = jax_step(jax_model, 0.0)
    x_jax = xn.transpose(0, 2, 3, 1) if name == "cnn" else xn
    ours = grad_fn(params, {"x": jnp.asarray(x_jax), "y": jnp.asarray(yn)})
    diffs = {}
    for mode in modes:
        _, clipped_sum = opacus_step(model_cls, torch_sd, mode, 0.0, torch.tensor(xn), torch.tensor(yn))
        theirs = clipped_sum()
        layers = ("fc1", "fc2") if name == "mlp" else ("conv1", "conv2", "fc1", "fc2")
        worst = 0.0
        for i, layer in enumerate(layers):
            w, b = theirs[2 * i], theirs[2 * i + 1]
            k = np.asarray(ours[layer]["kernel"])
            k = k.T if k.ndim == 2 else k.transpose(3, 2, 0, 1)
            worst = max(worst, float(np.abs(k - w).max()), float(np.abs(np.asarray(ours[layer]["bias"]) - b).max()))
        diffs[mode] = worst
        assert worst < 1e-3, f"{name}: jaxsuite and Opacus ({mode}) clipped sums differ by {worst}"
    return diffs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="timed steps per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--modes", default="hooks,ghost", help="Opacus grad_sample_mode values")
    parser.add_argument("--out", default="benchmarks/results/dpsgd_vs_opacus.json")
    args = parser.parse_args()
    import opacus
    import torch

    torch.manual_seed(0)
    modes = args.modes.split(",")
    rng = np.random.default_rng(0)
    xn = rng.uniform(size=(BATCH, 1, 28, 28)).astype(np.float32)
    yn = rng.integers(0, 10, BATCH).astype(np.int64)
    results = {"torch": torch.__version__, "opacus": opacus.__version__, "jax": jax.__version__,
               "machine": platform.platform(), "cpus": jax.device_count(), "batch": BATCH, "clip": CLIP,
               "noise": NOISE, "models": {}}
    for name, model_cls in torch_models().items():
        torch_model = model_cls()
        jax_model = (JaxMLP if name == "mlp" else JaxCNN)(nnx.Rngs(0))
        copy_weights(torch_model, jax_model)
        sd = torch_model.state_dict()
        diffs = check_same_clipped_sum(name, model_cls, jax_model, sd, xn, yn, modes)
        step, params, opt_state, _ = jax_step(jax_model, NOISE)
        batch = {"x": jnp.asarray(xn.transpose(0, 2, 3, 1) if name == "cnn" else xn), "y": jnp.asarray(yn)}
        params, opt_state = step(params, opt_state, batch)  # compile
        jax.block_until_ready(params)
        runners = {"jaxsuite": None, **{f"opacus_{m}": opacus_step(model_cls, sd, m, NOISE, torch.tensor(xn),
                                                                      torch.tensor(yn))[0] for m in modes}}
        times = {k: [] for k in runners}
        for _ in range(args.rounds):
            for key, fn in runners.items():
                t0 = time.perf_counter()
                for _ in range(args.steps):
                    if fn is None:
                        params, opt_state = step(params, opt_state, batch)
                    else:
                        fn()
                if fn is None:
                    jax.block_until_ready(params)
                times[key].append((time.perf_counter() - t0) / args.steps)
        results["models"][name] = {"ms_per_step": {k: 1000 * statistics.median(v) for k, v in times.items()},
                                   "clipped_sum_max_abs_diff": diffs}
        row = "  ".join(f"{k} {1000 * statistics.median(v):.1f} ms" for k, v in times.items())
        print(f"{name}: {row}   (clipped sums agree to {max(diffs.values()):.1e})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
