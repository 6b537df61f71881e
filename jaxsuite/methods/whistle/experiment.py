"""How a Whistle variant is run: multilingual pre-training on the seen languages, then few-shot fine-tuning on
each unseen language with the same budget for every variant (Whistle, Sec. 4.3 "crosslingual").

* ``phoneme_pretrain`` (Whistle): phone CTC over the shared IPA inventory; fine-tuning keeps the encoder and maps
  the output layer to the unseen language's phones (rows of known phones copied, new phones fresh).
* ``subword_pretrain``: BPE CTC over the seen languages' text; fine-tuning keeps the encoder, new output layer.
* ``ssl_pretrain``: wav2vec 2.0 (contrastive + diversity) on the seen languages' audio; new output layer.
* ``monolingual``: the unseen language from scratch, same fine-tuning budget.

Every variant is fine-tuned with phone CTC on the unseen language, so ``unseen_per`` compares the pre-training
alone; ``unseen_wer`` decodes the same outputs through the lexicon and word bigram LM. A pre-training depends only
on the seed, so `reproduce` runs it once per seed (in ``shared_dir``) and the variant reuses it.
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import ml_collections
import numpy as np

from jaxsuite.audio import ipa
from jaxsuite.core import config as config_lib
from jaxsuite.core import identity
from jaxsuite.core.loop import fit, host_batches
from jaxsuite.data import commonvoice, fleurs
from jaxsuite.data.cache import data_root, manifest_digest
from jaxsuite.data.speech import to_arrays, transcribe
from jaxsuite.methods.whistle import data as wdata
from jaxsuite.methods.whistle import decoding, train
from jaxsuite.methods.whistle.units import remap_rows

NAME = "whistle"
TITLE = "Whistle: multilingual/crosslingual CTC ASR with weak phonetic supervision (Yusuyin et al. 2024)"
REFERENCE = "whistle"

VARIANTS = {
    "phoneme_pretrain": ("Whistle: IPA phone CTC pre-training, output layer mapped to the new phones",
                         {"pretrain.kind": "phoneme"}),
    "subword_pretrain": ("BPE subword CTC pre-training, new output layer", {"pretrain.kind": "subword"}),
    "ssl_pretrain": ("wav2vec 2.0 self-supervised pre-training on the same audio, new output layer",
                     {"pretrain.kind": "ssl"}),
    "monolingual": ("the unseen language from scratch, same fine-tuning budget", {"pretrain.kind": "none"}),
}
PRETRAIN_KINDS = ("phoneme", "subword", "ssl", "none")


def variant_config(config, variant: str) -> ml_collections.ConfigDict:
    return config_lib.variant_config(config, VARIANTS, variant, NAME)


def results_meta(config) -> dict:
    dataset = (f"{config.dataset} (seen {','.join(config.seen_languages)}; unseen "
               f"{','.join(config.unseen_languages)})")
    return {"dataset": dataset, "primary_metric": "unseen_per", "higher_is_better": False, "reference": REFERENCE}


def check_data(config) -> dict[str, str]:
    """The config's languages known to its data set; the digests (manifests) of the folders it reads."""
    wdata.check(config)
    digests = {}
    if config.dataset == "commonvoice":
        root = Path(config.data.root or commonvoice.default_root())
        langs = sorted(set(config.seen_languages) | set(config.unseen_languages))
        digests[f"commonvoice:{root}"] = manifest_digest(root, tuple(f"{lang}/*.tsv" for lang in langs) +
                                                          tuple(f"{lang}/clips/*" for lang in langs))
    if config.eval_fleurs and fleurs.status() == "present":
        folder = data_root() / fleurs.FOLDER
        digests[f"fleurs:{folder}"] = manifest_digest(folder, ("fleurs-*",))
    return digests


def data_status() -> dict[str, str]:
    cv = commonvoice.default_root()
    return {"synth_lang10": "generated (eSpeak NG)", "speech_fleurs": fleurs.status(),
            "commonvoice": "present" if cv.is_dir() and any(cv.glob("*/train.tsv")) else f"missing ({cv})"}


def _per_language_per(state, utts_by_lang, phones, cfg, d) -> dict[str, float]:
    """Greedy PER per seen language, the outputs masked to the phones of that language's training set."""
    out = {}
    for lang, utts in utts_by_lang.items():
        arrays = wdata.phone_arrays(utts, phones, cfg)
        mask = phones.mask(d["speech"][lang]["train"])
        lps = train.predict(state, arrays, cfg.eval_batch_size, unit_mask=mask)
        refs = [u.phone_sequence for u in utts]
        out[lang] = decoding.error_rate(refs, [phones.decode(decoding.greedy(lp)) for lp in lps])
    return out


def _pretrain_metrics(state, kind, cfg, d) -> dict:
    """Seen-language test metrics of a pre-trained model: PER per language (phone model, masked to the phones
    of each language's training set), WER (subword model); FLEURS PER of the phone model when the clips are present."""
    test = {lang: d["speech"][lang]["test"] for lang in cfg.seen_languages}
    if kind == "phoneme":
        per = _per_language_per(state, test, d["phones"], cfg, d)
        out = {"seen_per": float(np.mean(list(per.values()))), **{f"seen_per_{k}": v for k, v in per.items()}}
        if cfg.eval_fleurs and fleurs.status() == "present":
            clips = fleurs.load([lang for lang in cfg.seen_languages if lang in fleurs.LANGUAGES])
            if clips:
                per = {}
                for lang in sorted({u.lang for u in clips}):
                    utts = [u for u in clips if u.lang == lang]
                    arrays = wdata.phone_arrays(utts, d["phones"], cfg, max_frames=fleurs.MAX_FRAMES,
                                                max_label_len=fleurs.MAX_LABEL_LEN)
                    lps = train.predict(state, arrays, len(utts), unit_mask=d["phones"].mask(
                        d["speech"][lang]["train"]))
                    per[lang] = decoding.error_rate([u.phone_sequence for u in utts],
                                                    [d["phones"].decode(decoding.greedy(lp)) for lp in lps])
                out["fleurs_per"] = float(np.mean(list(per.values())))
                out.update({f"fleurs_per_{k}": v for k, v in per.items()})
        return out
    if kind == "subword":  # WER of the decoded text, and PER of that text's G2P against the reference phones
        out, words, phones = {}, [], []
        for lang in cfg.seen_languages:
            arrays = wdata.subword_arrays(test[lang], d["subwords"], cfg)
            lps = train.predict(state, arrays, cfg.eval_batch_size)
            texts = [d["subwords"].decode(decoding.greedy(lp)) for lp in lps]
            hyp_phones = [ipa.flatten(p) if t.strip() else [] for t, p in
                          zip(texts, transcribe([t or " " for t in texts], lang, wdata.voice_of(cfg, lang)))]
            refs = [u.phone_sequence for u in test[lang]]
            out[f"seen_per_{lang}"] = decoding.error_rate(refs, hyp_phones)
            words += [u.words for u in test[lang]]
            phones += [t.split() for t in texts]
        return {"seen_per": float(np.mean([out[f"seen_per_{lang}"] for lang in cfg.seen_languages])), **out,
                "seen_wer": decoding.error_rate(words, phones)}
    return {}


def _stage(cfg, *, init_fn, kind: str, arrays: dict, steps: int, batch_size: int, seed: int, phase: int,
           workdir: Path, metrics_fn, progress: bool, desc: str):
    """Train (or resume, or restore) one stage; its metrics are computed once and kept in summary.json."""
    summary_path = Path(workdir) / "summary.json"
    result = fit(init_fn=init_fn, train_step=train.step_fn(kind, cfg),
                 batch_fn=host_batches(arrays, batch_size, seed * 1000 + phase), num_steps=steps, workdir=workdir,
                 checkpoint_every=cfg.checkpoint_every, keep_checkpoints=cfg.keep_checkpoints,
                 log_every=cfg.log_every, desc=desc, progress=progress)
    if result.interrupted:
        return result, None
    if summary_path.exists():
        return result, json.loads(summary_path.read_text())
    summary = {"train_seconds": result.train_seconds, **metrics_fn(result.state)}
    summary_path.write_text(json.dumps(summary))
    return result, summary


def pretrain(cfg, kind: str, seed: int, workdir: Path, d: dict, progress: bool = True):
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 0)
    p = cfg.pretrain
    if kind == "phoneme":
        arrays, units = wdata.phone_arrays(d["seen_train"], d["phones"], cfg), d["phones"].size
    elif kind == "subword":
        arrays, units = wdata.subword_arrays(d["seen_train"], d["subwords"], cfg), d["subwords"].size
    else:
        arrays, units = to_arrays(d["seen_train"], cfg.data.max_frames), None
    return _stage(cfg, init_fn=lambda: train.init(cfg, key, optim=p.optim, units=units, ssl=kind == "ssl"),
                  kind="ssl" if kind == "ssl" else "ctc", arrays=arrays, steps=p.steps, batch_size=p.batch_size,
                  seed=seed, phase=0, workdir=workdir, metrics_fn=lambda s: _pretrain_metrics(s, kind, cfg, d),
                  progress=progress, desc=f"pretrain {kind} s{seed}")


def finetune(cfg, kind: str, lang: str, seed: int, workdir: Path, d: dict, pre_state, progress: bool = True):
    """Few-shot phone CTC on unseen ``lang`` from the pre-trained encoder (or from scratch); test PER and WER."""
    u = d["unseen"][lang]
    units = u["units"]
    key = jax.random.fold_in(jax.random.PRNGKey(seed), 1)
    enc = None if pre_state is None else (pre_state.params["encoder"], pre_state.model_state["encoder"])
    head = rows = None
    if kind == "phoneme":
        head, rows = pre_state.params["head"], remap_rows(d["phones"], units)

    def init_fn():
        return train.init(cfg, key, optim=cfg.finetune.optim, units=units.size, encoder_from=enc,
                          head_rows=rows, head_from=head)

    def metrics_fn(state):
        arrays = wdata.phone_arrays(u["test"], units, cfg)
        lps = train.predict(state, arrays, cfg.eval_batch_size)
        refs = [t.phone_sequence for t in u["test"]]
        per = decoding.error_rate(refs, [units.decode(decoding.greedy(lp)) for lp in lps])
        lexicon = {w: units.encode(ph) for w, ph in u["lexicon"].items()}
        trie = decoding.Trie(lexicon)
        words = [decoding.lexicon_beam_search(lp, trie, u["lm"], beam=cfg.decode.beam, lm_weight=cfg.decode.lm_weight,
                                              word_bonus=cfg.decode.word_bonus) for lp in lps]
        wer = decoding.error_rate([t.words for t in u["test"]], words)
        return {"per": per, "wer": wer, "new_phones": int((rows < 0).sum()) if rows is not None else units.size - 1}

    return _stage(cfg, init_fn=init_fn, kind="ctc", arrays=wdata.phone_arrays(u["train"], units, cfg),
                  steps=cfg.finetune.steps, batch_size=cfg.finetune.batch_size, seed=seed, phase=1 + sorted(
                      d["unseen"]).index(lang), workdir=workdir, metrics_fn=metrics_fn, progress=progress,
                  desc=f"finetune {kind} {lang} s{seed}")


def run(config, variant: str, seed: int, workdir: str | Path, *, shared_dir: str | Path | None = None,
        progress: bool = True) -> dict | None:
    """Pre-train (shared per seed), fine-tune on every unseen language, return the test metrics."""
    cfg = variant_config(config, variant)
    kind = cfg.pretrain.kind
    if kind not in PRETRAIN_KINDS:
        raise config_lib.ConfigError(f"config key 'pretrain.kind' must be one of {PRETRAIN_KINDS}, got {kind!r}")
    workdir = Path(workdir)
    d = wdata.load(cfg)
    out: dict = {}
    seconds = 0.0
    pre_state = None
    if kind != "none":
        pre_dir = (identity.phase_dir(Path(shared_dir) / "pretrain" / kind, f"seed{seed}",  # keyed by its config
                                      {"config": identity.run_config(cfg), "seed": seed}, NAME)
                   if shared_dir else workdir / "pretrain")
        pre, summary = pretrain(cfg, kind, seed, pre_dir, d, progress)
        if summary is None:
            return None
        pre_state, seconds = pre.state, summary["train_seconds"]
        out.update({k: v for k, v in summary.items() if k != "train_seconds"})
    pers, wers = [], []
    for lang in cfg.unseen_languages:
        _, summary = finetune(cfg, kind, lang, seed, workdir / f"finetune_{lang}", d, pre_state, progress)
        if summary is None:
            return None
        seconds += summary["train_seconds"]
        pers.append(summary["per"])
        wers.append(summary["wer"])
        out.update({f"unseen_per_{lang}": summary["per"], f"unseen_wer_{lang}": summary["wer"],
                    f"new_phones_{lang}": summary["new_phones"]})
    return {"unseen_per": float(np.mean(pers)), "unseen_wer": float(np.mean(wers)), **out,
            "train_seconds": seconds}
