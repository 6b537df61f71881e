"""DP-SGD step speed: jaxsuite (ghost-norm clipping + Gaussian noise, jitted) against Opacus (PyTorch CPU, every
grad_sample_mode that runs: hooks, functorch, ew, ghost), on the same models with identical weights.

Models (batch 256, clip 1.0, noise 1.1, cross-entropy summed over the batch, SGD):
- mlp: 784-256-10.
- cnn: the MNIST CNN of Opacus' and TF Privacy's tutorials (conv 16@8x8 stride 2 pad 3, max-pool 2/1, conv
  32@4x4 stride 2, max-pool 2/1, dense 32, dense 10), NHWC in JAX, NCHW in PyTorch.
- transformer: token embedding (vocabulary 1000, width 64) + fixed sinusoidal positions, 2 pre-norm blocks
  (LayerNorm, 4-head self-attention with Linear q/k/v/o, LayerNorm, MLP 64-128-64), final LayerNorm, mean
  pool, Linear to 10 classes; sequence length 64.

Before timing, with the noise off, the clipped gradient sums of jaxsuite's ghost path, its vmap path and every
Opacus mode over the same batch are compared (``max_abs_diff``). Timing runs the implementations alternately
(one round: a block of steps of each, after a few untimed ones), ``--rounds`` rounds, and reports the medians
over rounds of the ms per step.

jaxsuite runs in two layouts, as PyTorch runs its modes: on one CPU device (XLA's intra-op threads), and data
parallel, the suite's own layout, with the batch sharded over a ``data`` mesh of one CPU device per core
(``--xla_force_host_platform_device_count``, set below from the cores this process may use unless XLA_FLAGS
already sets it; parameters replicated, clipped sums all-reduced). Its reported DP step is the faster layout,
as Opacus' is its fastest mode, and its non-private step and DP overhead are taken in that same layout.

    pip install -e ".[bench]"          # torch (the CPU build) and opacus
    python benchmarks/dpsgd_vs_opacus.py --json benchmarks/results/dpsgd_vs_opacus.json

Not part of the tests. JAX's max-pool is written as the maximum of four shifted slices: the same function as
``nnx.max_pool(h, (2, 2), (1, 1))``, whose gradient (XLA's select-and-scatter) costs on this CPU more than the
rest of the CNN's backward pass together.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):  # before jax is imported
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={len(os.sched_getaffinity(0))}").strip()

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from jaxsuite.core import sharding
from jaxsuite.privacy import dpsgd

BATCH, CLIP, NOISE, LR = 256, 1.0, 1.1, 0.05
VOCAB, WIDTH, HEADS, SEQ, CLASSES = 1000, 64, 4, 64, 10
OPACUS_MODES = ("hooks", "functorch", "ew", "ghost")


# ------------------------------------------------------------------------------------ JAX models ----

def max_pool_2x2_stride1(h):
    """``nnx.max_pool(h, (2, 2), (1, 1))`` on NHWC as the maximum of four shifted views."""
    return jnp.maximum(jnp.maximum(h[:, :-1, :-1], h[:, 1:, :-1]), jnp.maximum(h[:, :-1, 1:], h[:, 1:, 1:]))


def sinusoidal_positions(length: int, width: int) -> np.ndarray:
    pos, i = np.arange(length)[:, None], np.arange(width // 2)[None]
    angle = pos / 10000 ** (2 * i / width)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1).astype(np.float32)


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
        x = max_pool_2x2_stride1(jax.nn.relu(self.conv1(x)))
        x = max_pool_2x2_stride1(jax.nn.relu(self.conv2(x)))
        x = jnp.transpose(x, (0, 3, 1, 2)).reshape((x.shape[0], -1))  # flatten in torch's NCHW order
        return self.fc2(jax.nn.relu(self.fc1(x)))


class JaxBlock(nnx.Module):
    def __init__(self, rngs):
        self.ln1, self.ln2 = nnx.LayerNorm(WIDTH, epsilon=1e-5, rngs=rngs), nnx.LayerNorm(WIDTH, epsilon=1e-5, rngs=rngs)
        self.q, self.k, self.v, self.o = (nnx.Linear(WIDTH, WIDTH, rngs=rngs) for _ in range(4))
        self.fc1, self.fc2 = nnx.Linear(WIDTH, 2 * WIDTH, rngs=rngs), nnx.Linear(2 * WIDTH, WIDTH, rngs=rngs)

    def __call__(self, x):  # [N, T, D]
        h = self.ln1(x)
        split = lambda t: t.reshape(t.shape[:2] + (HEADS, WIDTH // HEADS))
        att = jax.nn.dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
        x = x + self.o(att.reshape(x.shape))
        return x + self.fc2(jax.nn.relu(self.fc1(self.ln2(x))))


class JaxTransformer(nnx.Module):
    def __init__(self, rngs):
        self.embed = nnx.Embed(VOCAB, WIDTH, rngs=rngs)
        self.blocks = nnx.List([JaxBlock(rngs) for _ in range(2)])
        self.ln = nnx.LayerNorm(WIDTH, epsilon=1e-5, rngs=rngs)
        self.head = nnx.Linear(WIDTH, CLASSES, rngs=rngs)
        self.positions = nnx.Variable(jnp.asarray(sinusoidal_positions(SEQ, WIDTH)))

    def __call__(self, ids):
        x = self.embed(ids) + self.positions[...]
        for block in self.blocks:
            x = block(x)
        return self.head(jnp.mean(self.ln(x), axis=1))


# -------------------------------------------------------------------------------- PyTorch models ----

def torch_models() -> dict:
    import torch
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

    class TorchBlock(tnn.Module):
        def __init__(self):
            super().__init__()
            self.ln1, self.ln2 = tnn.LayerNorm(WIDTH), tnn.LayerNorm(WIDTH)
            self.q, self.k, self.v, self.o = (tnn.Linear(WIDTH, WIDTH) for _ in range(4))
            self.fc1, self.fc2 = tnn.Linear(WIDTH, 2 * WIDTH), tnn.Linear(2 * WIDTH, WIDTH)

        def forward(self, x):
            h = self.ln1(x)
            split = lambda t: t.view(t.shape[0], t.shape[1], HEADS, WIDTH // HEADS).transpose(1, 2)
            att = F.scaled_dot_product_attention(split(self.q(h)), split(self.k(h)), split(self.v(h)))
            x = x + self.o(att.transpose(1, 2).reshape(x.shape))
            return x + self.fc2(F.relu(self.fc1(self.ln2(x))))

    class TorchTransformer(tnn.Module):
        def __init__(self):
            super().__init__()
            self.embed = tnn.Embedding(VOCAB, WIDTH)
            self.blocks = tnn.ModuleList([TorchBlock() for _ in range(2)])
            self.ln, self.head = tnn.LayerNorm(WIDTH), tnn.Linear(WIDTH, CLASSES)
            self.register_buffer("positions", torch.tensor(sinusoidal_positions(SEQ, WIDTH)))

        def forward(self, ids):
            x = self.embed(ids) + self.positions
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x).mean(1))

    return {"mlp": TorchMLP, "cnn": TorchCNN, "transformer": TorchTransformer}


JAX_MODELS = {"mlp": JaxMLP, "cnn": JaxCNN, "transformer": JaxTransformer}


def copy_weights(torch_model, jax_model) -> None:
    """Torch's weights into the NNX model (same attribute names): Linear W^T, Conv OIHW -> HWIO, Embedding as is,
    LayerNorm weight -> scale."""
    import torch.nn as tnn
    for name, module in torch_model.named_modules():
        target = jax_model
        for part in filter(None, name.split(".")):
            target = target[int(part)] if part.isdigit() else getattr(target, part)
        if isinstance(module, (tnn.Linear, tnn.Conv2d)):
            w = module.weight.detach().numpy()
            target.kernel[...] = jnp.asarray(w.T if w.ndim == 2 else w.transpose(2, 3, 1, 0))
            target.bias[...] = jnp.asarray(module.bias.detach().numpy())
        elif isinstance(module, tnn.Embedding):
            target.embedding[...] = jnp.asarray(module.weight.detach().numpy())
        elif isinstance(module, tnn.LayerNorm):
            target.scale[...] = jnp.asarray(module.weight.detach().numpy())
            target.bias[...] = jnp.asarray(module.bias.detach().numpy())


def data(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in PyTorch's layout, and labels."""
    y = rng.integers(0, CLASSES, BATCH).astype(np.int64)
    if name == "transformer":
        return rng.integers(0, VOCAB, (BATCH, SEQ)).astype(np.int64), y
    return rng.uniform(size=(BATCH, 1, 28, 28)).astype(np.float32), y


def jax_input(name: str, x: np.ndarray) -> jax.Array:
    return jnp.asarray(x.transpose(0, 2, 3, 1) if name == "cnn" else (x.astype(np.int32) if x.dtype == np.int64 else x))


# ------------------------------------------------------------------------------------------ steps ----

def jax_steps(model, noise: float):
    """(DP step, non-private step, params, opt states, clipped-sum functions by clipping mode)."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)

    def loss(p, batch):  # summed over its batch (of one, inside the clipping)
        logits = nnx.merge(graphdef, p, rest)(batch["x"])
        return jnp.sum(optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]))

    sums = {mode: dpsgd.clipped_grad_sum(loss, CLIP, clipping=mode) for mode in dpsgd.CLIPPING}
    dp_tx = optax.chain(dpsgd.dp_noise(CLIP, noise, BATCH, jax.random.key(0)), optax.sgd(LR))
    plain_tx = optax.sgd(LR)

    @jax.jit
    def dp_step(params, opt_state, batch):
        updates, opt_state = dp_tx.update(sums["ghost"](params, batch), opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    @jax.jit
    def plain_step(params, opt_state, batch):
        grads = jax.grad(loss)(params, batch)
        updates, opt_state = plain_tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state

    return dp_step, plain_step, params, dp_tx.init(params), plain_tx.init(params), {
        m: jax.jit(f) for m, f in sums.items()}


def opacus_step(model_cls, state_dict, mode: str, noise: float, x, y):
    """(step, clipped_sum) of an Opacus-private copy of the model; clipped_sum runs with the noise it was made with."""
    import torch
    from opacus import PrivacyEngine

    model = model_cls()
    model.load_state_dict(state_dict)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    criterion = torch.nn.CrossEntropyLoss(reduction="sum")
    kwargs = dict(module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=noise, max_grad_norm=CLIP,
                  poisson_sampling=False, grad_sample_mode=mode, loss_reduction="sum")
    if mode == "ghost":
        model, optimizer, criterion, loader = PrivacyEngine().make_private(criterion=criterion, **kwargs)
    else:
        model, optimizer, loader = PrivacyEngine().make_private(**kwargs)

    def step():
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

    def clipped_sum():  # with loss_reduction "sum", p.grad after pre_step is the clipped sum + noise
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.pre_step()
        return {name.removeprefix("_module."): p.grad.detach().numpy() for name, p in model.named_parameters()}

    return step, clipped_sum


def torch_plain_step(model_cls, state_dict, x, y):
    import torch

    model = model_cls()
    model.load_state_dict(state_dict)
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    criterion = torch.nn.CrossEntropyLoss(reduction="sum")

    def step():
        optimizer.zero_grad()
        criterion(model(x), y).backward()
        optimizer.step()

    return step


def as_torch_layout(jax_tree) -> dict[str, np.ndarray]:
    """jaxsuite's gradient pytree under torch's parameter names and layouts."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(jax_tree)[0]:
        keys = jax.tree_util.keystr(path, simple=True, separator=".").removesuffix(".value").split(".")
        name, leaf = keys[-1], np.asarray(leaf)
        if name == "kernel":
            leaf = leaf.T if leaf.ndim == 2 else leaf.transpose(3, 2, 0, 1)
        rename = {"kernel": "weight", "scale": "weight", "embedding": "weight"}
        out[".".join(keys[:-1] + [rename.get(name, name)])] = leaf
    return out


def max_abs_diff(a: dict, b: dict) -> float:
    if a.keys() != b.keys():
        raise AssertionError(f"parameter names differ: {sorted(a)} vs {sorted(b)}")
    return max(float(np.abs(a[k] - b[k]).max()) for k in a)


def time_alternately(runners: dict, steps: int, rounds: int, warmup: int, block_s: float) -> dict[str, float]:
    """Median over rounds of the mean ms/step; each round runs every runner in turn, a block of steps each
    (``steps`` at most, fewer for a slow runner so a block lasts about ``block_s``, at least 3), each block after
    up to ``warmup`` untimed steps (the other framework's worker threads spin for a while after its last task,
    and threads that went idle wake slowly: both would be charged to the first steps of a block)."""
    sizes = {}
    for key, run in runners.items():
        t0 = time.perf_counter()
        run(1)
        sizes[key] = max(3, min(steps, int(block_s / max(time.perf_counter() - t0, 1e-9))))
    times = {k: [] for k in runners}
    for _ in range(rounds):
        for key, run in runners.items():
            run(max(1, min(warmup, sizes[key] // 3)))
            gc.collect()
            gc.disable()  # a collection of the other framework's objects inside a timed block is noise
            t0 = time.perf_counter()
            run(sizes[key])
            times[key].append(1000 * (time.perf_counter() - t0) / sizes[key])
            gc.enable()
    return {k: statistics.median(v) for k, v in times.items()}


def xla_gflop(step, *args) -> float:
    """The floating-point operations XLA's cost analysis counts in one compiled step, in GFLOP."""
    cost = step.lower(*args).compile().cost_analysis()
    return float((cost[0] if isinstance(cost, list) else cost)["flops"]) / 1e9


def best_ms(fn, *args, repeats: int = 5, number: int = 10) -> float:
    """The fastest of ``repeats`` means over ``number`` calls, in ms (JAX results waited for)."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(number):
            out = fn(*args)
        jax.block_until_ready(out)
        times.append(1000 * (time.perf_counter() - t0) / number)
    return min(times)


def xla_probes() -> dict:
    """What XLA:CPU reaches on the transformer's shapes, one device: GFLOP/s of matmuls (a large square one, the
    blocks' [B T, 64] x [64, 64], attention's batched [64, 16] x [16, 64] over B H), and attention's forward and
    backward per block (``jax.nn.dot_product_attention``) against PyTorch's fused ``scaled_dot_product_attention``."""
    import torch

    key, out = jax.random.key(0), {}
    for name, (lhs, rhs) in {"matmul_2048x2048x2048": ((2048, 2048), (2048, 2048)),
                             "matmul_16384x64x64": ((BATCH * SEQ, WIDTH), (WIDTH, WIDTH)),
                             "batched_matmul_1024x64x16x64": ((BATCH * HEADS, SEQ, WIDTH // HEADS),
                                                              (BATCH * HEADS, WIDTH // HEADS, SEQ))}.items():
        a, b = jax.random.normal(key, lhs), jax.random.normal(key, rhs)
        out[f"{name}_gflops"] = 2 * a.size * rhs[-1] / best_ms(jax.jit(jnp.matmul), a, b) / 1e6
    q = jax.random.normal(key, (3, BATCH, SEQ, HEADS, WIDTH // HEADS))
    grad = jax.jit(jax.grad(lambda q, k, v: jnp.sum(jax.nn.dot_product_attention(q, k, v) ** 2), argnums=(0, 1, 2)))
    out["jax_attention_fwd_bwd_ms"] = best_ms(grad, q[0], q[1], q[2])
    tq = [torch.randn(BATCH, HEADS, SEQ, WIDTH // HEADS, requires_grad=True) for _ in range(3)]

    def sdpa():
        (torch.nn.functional.scaled_dot_product_attention(*tq) ** 2).sum().backward()
    out["torch_sdpa_fwd_bwd_ms"] = best_ms(sdpa)  # (PyTorch on CPU returns when it is done)
    return out


def jax_runner(step, params, opt_state, batch):
    state = [params, opt_state]
    jax.block_until_ready(step(*state, batch))  # compile

    def run(n):
        for _ in range(n):
            state[:] = step(*state, batch)
        jax.block_until_ready(state)
    return run


def torch_runner(step):
    step()  # warm up

    def run(n):
        for _ in range(n):
            step()
    return run


def bench_model(name: str, model_cls, args) -> dict:
    import torch

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    torch_model = model_cls()
    jax_model = JAX_MODELS[name](nnx.Rngs(0))
    copy_weights(torch_model, jax_model)
    sd = torch_model.state_dict()
    xn, yn = data(name, rng)
    x, y = torch.tensor(xn), torch.tensor(yn)
    batch = {"x": jax_input(name, xn), "y": jnp.asarray(yn, jnp.int32)}
    dp_step, plain_step, params, dp_state, plain_state, sums = jax_steps(jax_model, NOISE)
    ours = {m: as_torch_layout(f(params, batch)) for m, f in sums.items()}
    row = {"max_abs_diff_ghost_vs_vmap": max_abs_diff(ours["ghost"], ours["vmap"]), "opacus": {}}
    layouts = {"one device": (lambda tree: tree, lambda tree: tree)}
    if len(jax.devices()) > 1:
        mesh = sharding.make_mesh()
        layouts[f"data parallel x{len(jax.devices())}"] = (lambda tree: sharding.replicate(tree, mesh),
                                                           lambda tree: sharding.shard_batch(tree, mesh))
        sharded = as_torch_layout(sums["ghost"](sharding.replicate(params, mesh), sharding.shard_batch(batch, mesh)))
        row["max_abs_diff_sharded_vs_one_device"] = max_abs_diff(sharded, ours["ghost"])
    runners = {"torch_nonprivate": torch_runner(torch_plain_step(model_cls, sd, x, y))}
    for layout, (put, put_batch) in layouts.items():
        runners[f"jaxsuite/{layout}"] = jax_runner(dp_step, put(params), put(dp_state), put_batch(batch))
        runners[f"jaxsuite_nonprivate/{layout}"] = jax_runner(plain_step, put(params), put(plain_state),
                                                              put_batch(batch))
    for mode in args.opacus_modes:
        try:
            _, clipped_sum = opacus_step(model_cls, sd, mode, 0.0, x, y)
            diff = max_abs_diff(ours["ghost"], clipped_sum())
            runners[f"opacus_{mode}"] = torch_runner(opacus_step(model_cls, sd, mode, NOISE, x, y)[0])
            row["opacus"][mode] = {"max_abs_diff": diff}
        except Exception as err:  # a mode Opacus does not support for this model
            row["opacus"][mode] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"}
    if args.vmap:
        vmap_sum = sums["vmap"]
        runners["jaxsuite_vmap_clipped_sum"] = lambda n: jax.block_until_ready([vmap_sum(params, batch)
                                                                              for _ in range(n)])
    row["xla_gflop"] = {"dp": xla_gflop(dp_step, params, dp_state, batch),
                        "nonprivate": xla_gflop(plain_step, params, plain_state, batch)}
    ms = time_alternately(runners, args.steps, args.rounds, args.warmup, args.block_s)
    for mode in row["opacus"]:
        if f"opacus_{mode}" in ms:
            row["opacus"][mode]["ms"] = ms[f"opacus_{mode}"]
    ran = {m: v for m, v in row["opacus"].items() if "ms" in v}
    best = min(ran, key=lambda m: ran[m]["ms"])
    row["jaxsuite_layouts"] = {layout: {"ms": ms[f"jaxsuite/{layout}"],
                                        "nonprivate_ms": ms[f"jaxsuite_nonprivate/{layout}"]} for layout in layouts}
    layout = min(layouts, key=lambda k: ms[f"jaxsuite/{k}"])
    ours_ms, plain_ms = ms[f"jaxsuite/{layout}"], ms[f"jaxsuite_nonprivate/{layout}"]
    row.update(jaxsuite_layout=layout, jaxsuite_ms=ours_ms, jaxsuite_nonprivate_ms=plain_ms,
               torch_nonprivate_ms=ms["torch_nonprivate"], opacus_best_mode=best, opacus_best_ms=ran[best]["ms"],
               max_abs_diff=max(v["max_abs_diff"] for v in ran.values()),
               speedup_vs_opacus_best=ran[best]["ms"] / ours_ms, dp_overhead=ours_ms / plain_ms)
    if args.vmap:
        row["jaxsuite_vmap_clipped_sum_ms"] = ms["jaxsuite_vmap_clipped_sum"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", default="benchmarks/results/dpsgd_vs_opacus.json", help="where to write results")
    parser.add_argument("--models", default="mlp,cnn,transformer")
    parser.add_argument("--steps", type=int, default=20, help="steps per timed block (at most)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians over them)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps before each timed block (at most)")
    parser.add_argument("--block-s", type=float, default=0.25, help="seconds a timed block aims at")
    parser.add_argument("--opacus-modes", default=",".join(OPACUS_MODES), type=lambda s: s.split(","))
    parser.add_argument("--vmap", action="store_true", help="also time jaxsuite's vmap clipped sum (slow)")
    parser.add_argument("--no-probes", action="store_true",
                        help="skip the XLA matmul and attention speed probes (see xla_probes)")
    args = parser.parse_args()
    import opacus
    import torch

    results = {"torch": torch.__version__, "opacus": opacus.__version__, "jax": jax.__version__,
               "device": jax.devices()[0].device_kind, "jax_devices": len(jax.devices()),
               "machine": platform.platform(), "cores": torch.get_num_threads(),
               "batch": BATCH, "clip": CLIP, "noise": NOISE, "steps": args.steps, "rounds": args.rounds,
               "warmup": args.warmup, "block_s": args.block_s, "models": {}}
    started = time.perf_counter()
    for name, model_cls in torch_models().items():
        if name not in args.models.split(","):
            continue
        row = bench_model(name, model_cls, args)
        results["models"][name] = row
        print(f"{name}: jaxsuite ({row['jaxsuite_layout']}) {row['jaxsuite_ms']:.1f} ms "
              f"(non-private {row['jaxsuite_nonprivate_ms']:.1f}, overhead {row['dp_overhead']:.2f}x) | "
              f"opacus best ({row['opacus_best_mode']}) {row['opacus_best_ms']:.1f} ms -> "
              f"{row['speedup_vs_opacus_best']:.2f}x | torch non-private {row['torch_nonprivate_ms']:.1f} ms | "
              f"max |diff| {row['max_abs_diff']:.1e}", flush=True)
    if not args.no_probes:
        results["xla_probes"] = xla_probes()
        print("probes:", {k: round(v, 1) for k, v in results["xla_probes"].items()}, flush=True)
    results["wall_s"] = time.perf_counter() - started
    out = Path(args.json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1))
    print(f"wrote {out} ({results['wall_s']:.0f} s)")


if __name__ == "__main__":
    main()
