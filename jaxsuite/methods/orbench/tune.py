"""The choices of the quick preset, re-made on the validation prompts only (``splits``; issue 35). Reads no test
prompt. Prints one JSON object; replies are cached in ``OUT/replies.jsonl``, so a repeated call is free.

    python -m jaxsuite.methods.orbench.tune tokens --out /tmp/orbench_tune   # eval.max_new_tokens
    python -m jaxsuite.methods.orbench.tune judge --out /tmp/orbench_tune    # judge.mode

``tokens``: every variant answers the validation prompts (Hard-1K and Toxic) with each answer length of
``--lengths``; for each length: the keyword rejection rates and the fraction of prompts whose keyword decision
differs from the one at the longest length. Criterion: the shortest length whose keyword decisions equal the
longest's on every validation prompt (the rule reads the reply's opening; a longer reply only costs time).

``judge``: the judge reads a fixed sample of the validation replies (sys_none, ``--length`` tokens) in both modes;
for each: the parse rate (replies it assigns a class), its rejection rate and its agreement / Cohen's kappa with
the keyword rule. Criterion: the official ``generate`` mode unless it parses fewer than ``PARSE_MIN`` of the
items; then ``choice`` (which assigns a class to every item by construction).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from jaxsuite.methods.orbench import refusal, stats
from jaxsuite.methods.orbench.backends import make_backend
from jaxsuite.methods.orbench.evaluate import answer, judge, judged_subset
from jaxsuite.methods.orbench.response_cache import ResponseCache
from jaxsuite.methods.orbench.splits import load_split
from jaxsuite.methods.orbench.templates import SYSTEM_PROMPTS

SETS = (("hard", "hard_1k"), ("toxic", "toxic"))
PARSE_MIN = 0.8


def validation_sets(config, names=("hard", "toxic")) -> dict:
    return {name: load_split(split, getattr(config.eval, f"{name}_prompts"),
                             getattr(config.eval, f"val_{name}_prompts"))[1] for name, split in SETS if name in names}


def tune_tokens(config, backend, cache, lengths, variants, names=("hard", "toxic")) -> dict:
    val = validation_sets(config, names)
    family = config.eval.keyword_family
    out: dict = {"lengths": list(lengths), "n": {k: len(v) for k, v in val.items()}, "variants": {}}
    longest = max(lengths)
    decisions: dict = {v: {} for v in variants}
    for length in lengths:  # in the order given: a stopped call keeps (caches) the lengths it finished
        for variant in variants:
            t0 = time.perf_counter()
            decisions[variant][length] = {
                name: [refusal.keyword_refusal(r, family) for r in
                       answer(backend, list(ds["prompt"]), SYSTEM_PROMPTS[variant], length, cache)]
                for name, ds in val.items()}
            print(f"[tune] {variant} {length} tokens: {time.perf_counter() - t0:.0f} s", flush=True)
    for variant, by_length in decisions.items():
        out["variants"][variant] = {
            str(length): {**{f"val_{name}_rejection_rate": stats.rate(d)["rate"] for name, d in dec.items()},
                          **{f"{name}_changed_vs_{longest}": sum(a != b for a, b in zip(d, by_length[longest][name]))
                             / len(d) for name, d in dec.items()}}
            for length, dec in sorted(by_length.items())}
    same = [n for n in sorted(lengths) if all(
        v[str(n)][f"{name}_changed_vs_{longest}"] == 0 for v in out["variants"].values() for name in val)]
    out["chosen"] = same[0] if same else longest
    return out


def tune_judge(config, backend, cache, length: int, items: int) -> dict:
    val = validation_sets(config)
    family = config.eval.keyword_family
    out: dict = {"length": length, "items_per_set": items, "modes": {}}
    replies = {name: answer(backend, list(ds["prompt"]), SYSTEM_PROMPTS["sys_none"], length, cache)
               for name, ds in val.items()}
    for mode in ("generate", "choice"):
        t0 = time.perf_counter()
        kw, jd = [], []
        for name, ds in val.items():
            idx = judged_subset(len(ds), items)
            classes = judge(backend, [ds["prompt"][i] for i in idx], [replies[name][i] for i in idx],
                            config.judge.max_new_tokens, cache, mode)
            kw += [refusal.keyword_refusal(replies[name][i], family) for i in idx]
            jd += [refusal.judge_refusal(c) for c in classes]
        out["modes"][mode] = {"parse_rate": sum(j is not None for j in jd) / len(jd),
                              "judge_rejection_rate": stats.rate(jd)["rate"],
                              "keyword_rejection_rate": stats.rate(kw)["rate"],
                              "agreement": stats.agreement(kw, jd), "seconds": time.perf_counter() - t0}
        print(f"[tune] judge {mode}: {out['modes'][mode]['seconds']:.0f} s", flush=True)
    out["chosen"] = "generate" if out["modes"]["generate"]["parse_rate"] >= PARSE_MIN else "choice"
    return out


def main(argv=None) -> int:
    from jaxsuite.core.config import load_config
    from jaxsuite.core.runner import git_commit

    ap = argparse.ArgumentParser(prog="python -m jaxsuite.methods.orbench.tune", description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=("tokens", "judge"))
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    ap.add_argument("--out", default="/tmp/orbench_tune")
    ap.add_argument("--lengths", default="24,48,12", help="tokens: answer lengths compared")
    ap.add_argument("--variants", default="sys_none,sys_mild,sys_strict", help="tokens: the variants")
    ap.add_argument("--sets", default="hard,toxic", help="tokens: the validation sets answered")
    ap.add_argument("--length", type=int, default=None, help="judge: answer length (default eval.max_new_tokens)")
    ap.add_argument("--items", type=int, default=40, help="judge: validation items judged per set")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    config = load_config("orbench", args.preset, args.set or ())
    backend = make_backend(config.backend)
    cache = ResponseCache(Path(args.out) / "replies.jsonl")
    if args.what == "tokens":
        res = tune_tokens(config, backend, cache, [int(x) for x in args.lengths.split(",")],
                          args.variants.split(","), tuple(args.sets.split(",")))
        name = f"tokens_{args.lengths.replace(',', '-')}_{args.sets.replace(',', '-')}"
    else:
        res = tune_judge(config, backend, cache, args.length or int(config.eval.max_new_tokens), args.items)
        name = "judge"
    res = {"command": "python -m jaxsuite.methods.orbench.tune " + " ".join(argv if argv is not None else sys.argv[1:]),
           "git_commit": git_commit(), "seconds": time.perf_counter() - t0, **res}
    text = json.dumps(res, indent=1)
    (Path(args.out) / f"{name}.json").write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
