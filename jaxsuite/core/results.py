"""The results contract (DESIGN.md): ``OUT/METHOD/results.json``, ``results.md`` (mean +- std per
variant, and each variant paired against the reference: per-seed differences, a 95% interval and a verdict)
and a PNG bar plot of the primary metric."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from jaxsuite.core import stats


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


def format_paired(payload: dict) -> str:
    """Markdown table of the reference against every other variant on the primary metric: the per-seed
    differences (reference - variant), their mean with a 95% Student-t interval over seeds, and the verdict."""
    paired = stats.ensure_paired(payload)
    if not paired:
        return f"No paired comparison: the reference variant {payload.get('reference')!r} did not run."
    ref, primary = payload["reference"], payload["primary_metric"]
    lines = [f"Paired by seed, `{primary}` of {ref} (reference) minus each variant's "
             f"({'higher' if payload.get('higher_is_better', True) else 'lower'} is better); 95% interval from "
             "Student's t over seeds; the verdict is the reference's.", "",
             "| variant | reference - variant: mean [95% CI] | per seed | verdict |", "|---|---|---|---|"]
    for variant, p in paired.items():
        per_seed = ", ".join(f"{s}: {d:+.4f}" for s, d in zip(p["seeds"], p["diffs"])) or "—"
        lines.append(f"| {variant} | {stats.format_interval(p)} | {per_seed} | {p['verdict']} |")
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
    finite = [(m, s) for m, s in stats if math.isfinite(m)]
    lo = min((m - s for m, s in finite), default=0.0)
    hi = max((m + s for m, s in finite), default=1.0)
    # bars start at zero (a bar's height is its value); the values are written on the bars, so a small gap
    # between variants is read from the numbers, not from a cropped axis
    ax.set_ylim(min(0.0, lo * 1.1), max(hi * 1.12, 1e-3) if hi > 0 else 1e-3)
    for i, (m, _) in enumerate(stats):
        if math.isfinite(m):
            ax.annotate(f"{m:.4g}", (i, m), textcoords="offset points", xytext=(0, 3), ha="center", fontsize=7)
    ax.set_ylabel(primary + (" (lower is better)" if not payload.get("higher_is_better", True) else ""))
    ax.set_title(f"{payload['method']} ({payload['preset']}, {payload['dataset']}), seeds {payload['seeds']}"
                 + (f"\n{_what_ran(payload)}" if _what_ran(payload) else ""), fontsize=9)
    plt.xticks(rotation=30, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _what_ran(payload: dict) -> str:
    """The overrides and the variant subset of a reproduce, in one line ("" for the preset as it is)."""
    parts = []
    if payload.get("overrides"):
        parts.append("overrides: " + " ".join(f"--set {o}" for o in payload["overrides"]))
    known = payload.get("variants_known") or []
    ran = payload.get("variants_run") or list(payload["variants"])
    if known and set(ran) != set(known):
        parts.append(f"variants: {', '.join(ran)} ({len(ran)} of {len(known)})")
    return "; ".join(parts)


def _provenance(payload: dict) -> str:
    """What ran, on which data and code: the line under results.md's title."""
    line = f"Ran: {_what_ran(payload) or 'the preset as it is (no overrides, every variant)'}."
    if payload.get("command"):
        line += f" Command: `{payload['command']}`."
    if payload.get("machine"):
        m = payload["machine"]
        line += f" Machine: {m.get('cpu')}, {m.get('cores')} cores, {m.get('accelerator')}."
    if payload.get("fingerprint"):
        line += f" Code fingerprint {payload['fingerprint']['digest']}."
    if payload.get("data"):
        line += " Data: " + ", ".join(f"{k} {str(v)[:24]}" for k, v in payload["data"].items()) + "."
    if payload.get("code_version"):
        line += f" Code version {payload['code_version']}."
    return line


def write(payload: dict, out_dir: Path, *, paired_md=None) -> dict[str, Path]:
    """results.json, results.md and the primary metric's plot. ``payload["paired"]``, when the method set it (a
    method whose unit of pairing is not the seed: orbench pairs by prompt), is kept, else paired by seed here;
    ``paired_md`` renders it for results.md (default :func:`format_paired`)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "md": out_dir / "results.md",
             "png": out_dir / f"{payload['primary_metric']}.png"}
    payload["paired"] = payload.get("paired") or stats.paired_all(payload)
    paths["json"].write_text(json.dumps(payload, indent=2) + "\n")
    header = (f"# {payload['method']} — preset {payload['preset']}, dataset {payload['dataset']}\n\n"
              f"Primary metric: `{payload['primary_metric']}` "
              f"({'higher' if payload['higher_is_better'] else 'lower'} is better); mean ± std over seeds "
              f"{payload['seeds']}; {payload['devices']}; git {payload['git_commit'][:10]}; "
              f"{payload['wall_seconds']:.0f} s wall.\n\n"
              + _provenance(payload) + "\n\n")
    paths["md"].write_text(header + format_table(payload) + "\n\n" + (paired_md or format_paired)(payload) + "\n")
    plot(payload, paths["png"])
    return paths
