"""The results contract (DESIGN.md): ``OUT/METHOD/results.json``, ``results.md`` (mean +- std per
variant) and a PNG bar plot of the primary metric."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np


def mean_std(values) -> tuple[float, float]:
    arr = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if arr.size == 0:
        return float("nan"), float("nan")
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _metric_columns(payload: dict) -> list[str]:
    primary = payload["primary_metric"]
    names = []
    for metrics in payload["variants"].values():
        names += [k for k in metrics if k not in names]
    rest = [k for k in names if k not in (primary, "train_seconds") and not k.startswith("pretrain_")]
    return [primary] + rest + (["train_seconds"] if "train_seconds" in names else [])


def format_table(payload: dict) -> str:
    """Markdown table: one row per variant, mean +- std over seeds for each metric."""
    cols = _metric_columns(payload)
    lines = ["| variant | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for variant, metrics in payload["variants"].items():
        cells = []
        for c in cols:
            m, s = mean_std(metrics.get(c, []))
            digits = 1 if c == "train_seconds" else 4
            cells.append(f"{m:.{digits}f} ± {s:.{digits}f}")
        mark = " (ref)" if variant == payload.get("reference") else ""
        lines.append(f"| {variant}{mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(payload: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = payload["primary_metric"]
    names = list(payload["variants"])
    stats = [mean_std(payload["variants"][n].get(primary, [])) for n in names]
    fig, ax = plt.subplots(figsize=(1.2 * len(names) + 2, 3.5))
    ax.bar(names, [m for m, _ in stats], yerr=[s for _, s in stats], capsize=4,
           color=["tab:red" if n == payload.get("reference") else "tab:blue" for n in names])
    for i, n in enumerate(names):
        ax.scatter([i] * len(payload["variants"][n].get(primary, [])), payload["variants"][n].get(primary, []),
                   color="k", s=8, zorder=3)
    lo = min(m - s for m, s in stats if math.isfinite(m)) if any(math.isfinite(m) for m, _ in stats) else 0
    hi = max(m + s for m, s in stats if math.isfinite(m)) if any(math.isfinite(m) for m, _ in stats) else 1
    pad = max((hi - lo) * 0.5, 1e-3)
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(primary)
    ax.set_title(f"{payload['method']} ({payload['preset']}, {payload['dataset']}), seeds {payload['seeds']}")
    plt.xticks(rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write(payload: dict, out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "md": out_dir / "results.md",
             "png": out_dir / f"{payload['primary_metric']}.png"}
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    header = (f"# {payload['method']} — preset {payload['preset']}, dataset {payload['dataset']}\n\n"
              f"Primary metric: `{payload['primary_metric']}` "
              f"({'higher' if payload['higher_is_better'] else 'lower'} is better); mean ± std over seeds "
              f"{payload['seeds']}; {payload['devices']}; git {payload['git_commit'][:10]}; "
              f"{payload['wall_seconds']:.0f} s wall.\n\n")
    paths["md"].write_text(header + format_table(payload) + "\n")
    plot(payload, paths["png"])
    return paths
