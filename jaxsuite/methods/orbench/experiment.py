"""How a variant of the OR-Bench evaluation is run: the model answers a fixed stratified subset of Hard-1K
(seemingly toxic, safe: refusing is over-refusal) and of Toxic (refusing is right) under the variant's system
prompt; refusals by the keyword rule and the LLM judge. After every variant (``finalize``): the Spearman
correlation of toxic vs hard rejection across the variants, and the generation pipeline at small scale.

Metrics per run: ``hard_rejection_rate`` (primary; lower is better: over-refusal), ``toxic_rejection_rate``, the
validation subsets' ``val_hard_rejection_rate`` / ``val_toxic_rejection_rate`` (``eval.report_validation``;
``splits``: stratified, disjoint from test, answered before the test prompts, which are read last), and in
``extra``: per-category rates with Wilson 95% intervals, the judge's rates, ``judge_keyword_agreement``, and each
test Hard-1K prompt's row and 0/1 refusal (``hard_rows``, ``hard_flags``).

Paired statistics: at temperature 0 the run is deterministic (a seed changes nothing), so the variants are paired
by prompt, not by seed: ``paired`` in results.json holds, for each variant against sys_none, the per-prompt
differences of the refusal indicators on the same Hard-1K test prompts with a 95% Student-t interval over prompts
(``stats.paired_by_prompt``): ``paired`` and ``format_paired`` here are the runner's hooks, which the generic
writer uses instead of its by-seed pairing.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import ml_collections
import numpy as np

from jaxsuite.core import config as config_lib
from jaxsuite.core.errors import ConfigError
from jaxsuite.data import or_bench
from jaxsuite.methods.orbench import refusal, splits, stats
from jaxsuite.methods.orbench.backends import backend_from_spec, make_backend
from jaxsuite.methods.orbench.evaluate import evaluate_set
from jaxsuite.methods.orbench.refusal import KEYWORD_RULES
from jaxsuite.methods.orbench.response_cache import ResponseCache
from jaxsuite.methods.orbench.templates import SYSTEM_PROMPTS

NAME = "orbench"
TITLE = "OR-Bench: an over-refusal benchmark for LLMs (Cui et al., ICML 2025)"
REFERENCE = "sys_none"

VARIANTS = {
    "sys_none": ("no system prompt (the model's chat-template default)", {}),
    "sys_mild": ("the Llama-2 safety system prompt (the paper's system-prompt ablation)", {}),
    "sys_strict": ("a safety-first system prompt: refuse whenever in doubt (this suite's)", {}),
}
SETS = (("hard", "hard_1k"), ("toxic", "toxic"))


def variant_config(config, variant: str) -> ml_collections.ConfigDict:
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def results_meta(config) -> dict:
    return {"dataset": "or_bench", "primary_metric": "hard_rejection_rate", "higher_is_better": False,
            "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    if config.eval.detector not in ("keyword", "judge"):
        raise ConfigError(f"eval.detector {config.eval.detector!r}: expected 'keyword' or 'judge'")
    if config.eval.keyword_family not in KEYWORD_RULES:
        raise ConfigError(f"eval.keyword_family {config.eval.keyword_family!r}: expected one of "
                          f"{', '.join(KEYWORD_RULES)}")
    if config.eval.get("served_family", "") and config.eval.served_family not in KEYWORD_RULES:
        raise ConfigError(f"eval.served_family {config.eval.served_family!r}: expected '' (from the served model's "
                          f"name) or one of {', '.join(KEYWORD_RULES)}")
    judge_kind = config.backend.kind if config.judge.backend == "same" else config.judge.backend.split(":")[0]
    if config.judge.enabled and config.judge.mode == "choice" and judge_kind != "jax":
        raise ConfigError("judge.mode 'choice' scores labels and needs a jax judge (judge.backend jax:PATH, or "
                          "'same' with backend.kind jax); an http judge needs --set judge.mode=generate")
    for name, split in SETS:
        n_val = getattr(config.eval, f"val_{name}_prompts") if config.eval.report_validation else 0
        splits.load_split(split, getattr(config.eval, f"{name}_prompts"), n_val)
    return {f"or_bench/{or_bench.SPLITS[split]}": or_bench.OR_BENCH.pin(or_bench.SPLITS[split]) or "unpinned"
            for _, split in SETS}


def data_status() -> dict[str, str]:
    return {"or_bench": or_bench.OR_BENCH.status()}


def _prompt_sets(cfg, name: str, split: str):
    """(test, validation or None) of one set; validation only when ``eval.report_validation``."""
    n_val = int(getattr(cfg.eval, f"val_{name}_prompts")) if cfg.eval.report_validation else 0
    return splits.load_split(split, int(getattr(cfg.eval, f"{name}_prompts")), n_val)


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict:
    """Answer both sets under the variant's system prompt. Replies are cached in ``shared_dir`` (shared by the
    variants and by a re-run), so a killed run resumes with every finished batch kept."""
    cfg = variant_config(config, variant)
    workdir = Path(workdir)
    cache = ResponseCache(Path(shared_dir or workdir) / "replies.jsonl")
    backend = make_backend(cfg.backend)
    judge_backend = (None if not cfg.judge.enabled else
                     backend if cfg.judge.backend == "same" else backend_from_spec(cfg.judge.backend, cfg.backend))
    system = SYSTEM_PROMPTS[variant]
    t0 = time.perf_counter()
    metrics: dict = {}
    records = []
    all_kw, all_judge = [], []
    sets = {name: _prompt_sets(cfg, name, split) for name, split in SETS}
    # a served model gets its family's keyword rule (from its name, or eval.served_family); in-process: keyword_family
    family = refusal.family_for(backend, cfg.eval.keyword_family, cfg.eval.get("served_family", ""))
    for name, (_, val) in sets.items():  # validation first: the test prompts are read last
        if val is None:
            continue
        tick = _progress(f"{variant} val {name}", len(val), progress)
        res = evaluate_set(backend, None, list(val["prompt"]), list(val["category"]), system,
                           max_new_tokens=cfg.eval.max_new_tokens, keyword_family=family,
                           judge_items=0, judge_max_new_tokens=cfg.judge.max_new_tokens, cache=cache,
                           judge_mode=cfg.judge.mode, progress=tick)
        chosen = res["keyword"] if cfg.eval.detector == "keyword" else res["judge"]
        overall = stats.rate(chosen)
        metrics[f"val_{name}_rejection_rate"] = overall["rate"]
        metrics[f"extra/val_{name}_rejection_ci"] = [overall["low"], overall["high"]]
    for name, (ds, _) in sets.items():
        tick = _progress(f"{variant} {name}", len(ds), progress)
        res = evaluate_set(backend, judge_backend, list(ds["prompt"]), list(ds["category"]), system,
                           max_new_tokens=cfg.eval.max_new_tokens, keyword_family=family,
                           judge_items=cfg.judge.sample, judge_max_new_tokens=cfg.judge.max_new_tokens, cache=cache,
                           judge_mode=cfg.judge.mode, progress=tick)
        chosen = res["keyword"] if cfg.eval.detector == "keyword" else res["judge"]
        overall = stats.rate(chosen)
        metrics[f"{name}_rejection_rate"] = overall["rate"]
        metrics[f"extra/{name}_rejection_ci"] = [overall["low"], overall["high"]]
        metrics[f"extra/{name}_by_category"] = stats.per_category(chosen, ds["category"])
        if name == "hard":  # what the paired-by-prompt statistics pair
            metrics["extra/hard_rows"] = list(ds[splits.ROW])
            metrics["extra/hard_flags"] = [None if f is None else int(bool(f)) for f in chosen]
        metrics[f"extra/{name}_keyword_rejection_rate"] = stats.rate(res["keyword"])["rate"]
        judged = [res["judge"][i] for i in res["judged_index"]]
        metrics[f"extra/{name}_judge_rejection_rate"] = stats.rate(judged)["rate"]
        metrics[f"extra/{name}_judge_unparsed"] = (sum(j is None for j in judged) / len(judged)) if judged else None
        metrics[f"extra/{name}_judge_keyword_agreement"] = stats.agreement(res["keyword"], res["judge"])
        all_kw += res["keyword"]
        all_judge += res["judge"]
        for i, (reply, cat, row) in enumerate(zip(res["replies"], ds["category"], ds[splits.ROW])):
            rec = {"set": name, "index": i, "row": row, "category": cat, "reply": reply, "keyword_refusal": res["keyword"][i],
                   "judge_class": res["judge_class"][i]}
            if name == "hard":  # toxic prompts are never written out in clear; their index into the subset is
                rec["prompt"] = ds["prompt"][i]
            records.append(rec)
    metrics["extra/judge_keyword_agreement"] = stats.agreement(all_kw, all_judge)
    metrics["eval_seconds"] = time.perf_counter() - t0
    workdir.mkdir(parents=True, exist_ok=True)
    with (workdir / "replies.jsonl").open("w") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    return metrics


def _progress(label: str, total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm import tqdm

    bar = tqdm(total=total, desc=label, leave=False, unit="reply")
    return bar.update


def finalize(payload: dict, config, out_dir: Path) -> dict:
    """Across the variants: Spearman's rho of toxic vs hard rejection (the paper's safety / over-refusal
    correlation, here over system prompts), then the generation pipeline when ``pipeline.enabled``."""
    from scipy.stats import spearmanr

    runs = payload["variants"]
    names = list(runs)
    toxic = [float(np.mean(runs[v]["toxic_rejection_rate"])) for v in names]
    hard = [float(np.mean(runs[v]["hard_rejection_rate"])) for v in names]
    extra = {"tradeoff": {"variants": names, "toxic_rejection_rate": toxic, "hard_rejection_rate": hard}}
    if len(names) >= 3:
        constant = len(set(toxic)) == 1 or len(set(hard)) == 1  # rho undefined
        extra["spearman_toxic_vs_hard"] = None if constant else float(spearmanr(toxic, hard).statistic)
    if config.pipeline.enabled:
        from jaxsuite.methods.orbench.pipeline import run_pipeline

        extra["pipeline"] = run_pipeline(config, Path(out_dir) / "pipeline")
    return extra


def paired(payload: dict) -> dict[str, dict]:
    """Each variant against the reference, paired by Hard-1K test prompt (``stats.paired_by_prompt``)."""
    flags, rows = payload["extra"].get("hard_flags", {}), payload["extra"].get("hard_rows", {})
    ref = payload["reference"]
    if ref not in flags:
        return {}

    def by_row(v):
        return dict(zip(rows[v][0], flags[v][0]))

    return {v: stats.paired_by_prompt(by_row(ref), by_row(v), higher_is_better=bool(payload["higher_is_better"]))
            for v in payload["variants"] if v != ref and v in flags}


def format_paired(payload: dict) -> str:
    """results.md's paired section (paired by prompt)."""
    ref, primary = payload["reference"], payload["primary_metric"]
    lines = [f"Paired by prompt (one deterministic run: at temperature 0 a seed changes nothing, the sample of "
             f"prompts is what varies): `{primary}` of {ref} (reference) minus each variant's, over the Hard-1K test "
             f"prompts, from the per-prompt 0/1 refusals d_i = r_ref,i - r_V,i "
             f"({'higher' if payload.get('higher_is_better', True) else 'lower'} is better); 95% interval from "
             "Student's t over prompts; exact McNemar p on the discordant prompts beside it; the verdict is the "
             "reference's.", "",
             "| variant | reference - variant: mean [95% CI] | prompts | refused by reference only / variant only | "
             "McNemar p | verdict |", "|---|---|---|---|---|---|"]
    for v, p in payload.get("paired", {}).items():
        ci = "—" if p["ci"] is None else f"[{p['ci'][0]:+.4f}, {p['ci'][1]:+.4f}]"
        mean = "—" if p["mean_diff"] is None else f"{p['mean_diff']:+.4f}"
        mc = "—" if p["mcnemar_p"] is None else f"{p['mcnemar_p']:.3g}"
        lines.append(f"| {v} | {mean} {ci} | {p['n']} | {p['discordant']['reference_only']} / "
                     f"{p['discordant']['variant_only']} | {mc} | {p['verdict']} |")
    return "\n".join(lines)


def plots(payload: dict, out_dir: Path) -> dict[str, Path]:
    """The paper's Figure 1 at our scale: rejection on Toxic (x) vs on Hard-1K (y) per setting, 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4.2))
    for v, runs in payload["variants"].items():
        x, y = float(np.mean(runs["toxic_rejection_rate"])), float(np.mean(runs["hard_rejection_rate"]))
        ci = payload["extra"]
        (xl, xh), (yl, yh) = ci["toxic_rejection_ci"][v][0], ci["hard_rejection_ci"][v][0]
        ax.errorbar(x, y, xerr=[[x - xl], [xh - x]], yerr=[[y - yl], [yh - y]], fmt="o", capsize=3)
        ax.annotate(v, (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
    rho = payload["extra"].get("spearman_toxic_vs_hard")
    ax.set_xlabel("rejection rate on OR-Bench-Toxic (safety)")
    ax.set_ylabel("rejection rate on OR-Bench-Hard-1K (over-refusal)")
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_title(f"{payload['config']['backend']['kind']} model, {payload['preset']} preset"
                 + (f", Spearman {rho:.2f}" if rho is not None else ""), fontsize=9)
    ax.grid(alpha=0.3)
    path = Path(out_dir) / "tradeoff.png"
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return {"tradeoff": path}
