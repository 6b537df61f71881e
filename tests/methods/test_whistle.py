"""Whistle: decoding, error rates, the wav2vec 2.0 pieces, unit sets, the train steps, and every variant end to end."""
import itertools
import json
import shutil

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jaxsuite.core import config as config_lib
from jaxsuite.core import sharding
from jaxsuite.core.runner import run_one
from jaxsuite.data.speech import Utterance
from jaxsuite.methods.whistle import decoding, losses, train
from jaxsuite.methods.whistle.lm import BigramLM
from jaxsuite.methods.whistle.units import PhoneSet, remap_rows


def _log_softmax(x):
    return np.asarray(jax.nn.log_softmax(jnp.asarray(x), -1))


def _sequence_log_prob(lp, labels):
    """log p(labels | x) under CTC (optax's forward algorithm)."""
    t = lp.shape[0]
    if not labels:
        return float(lp[:, 0].sum())
    loss = optax.ctc_loss(jnp.asarray(lp)[None], jnp.zeros((1, t)), jnp.asarray([labels]),
                          jnp.zeros((1, len(labels))))
    return -float(loss[0])


@pytest.mark.parametrize("seed", range(4))
def test_prefix_beam_search_finds_the_most_probable_labelling(seed):
    lp = _log_softmax(np.random.default_rng(seed).normal(0, 2, (5, 3)))
    candidates = [list(c) for n in range(4) for c in itertools.product([1, 2], repeat=n)]
    best = max(candidates, key=lambda c: _sequence_log_prob(lp, c))
    found = decoding.prefix_beam_search(lp, beam=16, prune=-np.inf)
    assert np.isclose(_sequence_log_prob(lp, found), _sequence_log_prob(lp, best), atol=1e-5)


def test_greedy_collapses_repeats_and_blanks():
    frames = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    assert decoding.greedy(np.eye(4)[frames]) == [1, 1, 2, 3]


def test_edit_distance_and_error_rate():
    assert decoding.edit_distance("kitten", "sitting") == 3
    assert decoding.edit_distance([], [1, 2]) == 2
    assert decoding.error_rate([["a", "b"], ["c"]], [["a"], ["c", "d"]]) == pytest.approx(2 / 3)


def _peaked(units, blank_between=True, t_per=2):
    frames = []
    for u in units:
        frames += [u] * t_per + ([0] if blank_between else [])
    return np.log(np.eye(6)[frames] * 0.97 + 0.005)


def test_lexicon_search_spells_words_and_the_lm_breaks_ties():
    lexicon = {"ab": [1, 2], "abc": [1, 2, 3], "c": [3], "de": [4, 5], "ed": [5, 4]}
    trie = decoding.Trie(lexicon)
    lm = BigramLM([["ab", "c"]] * 5 + [["abc"]], list(lexicon))
    assert decoding.lexicon_beam_search(_peaked([1, 2, 3, 4, 5]), trie, lm, beam=16) in (["ab", "c", "de"],
                                                                                       ["abc", "de"])
    assert decoding.lexicon_beam_search(_peaked([1, 2, 3]), trie, lm, beam=16, lm_weight=5.0) == ["ab", "c"]
    lm2 = BigramLM([["abc"]] * 5, list(lexicon))
    assert decoding.lexicon_beam_search(_peaked([1, 2, 3]), trie, lm2, beam=16, lm_weight=5.0) == ["abc"]
    assert decoding.lexicon_beam_search(_peaked([5, 4]), trie, lm, beam=16) == ["ed"]


def test_bigram_lm_is_normalised():
    vocab = ["a", "b", "c"]
    lm = BigramLM([["a", "b"], ["a", "c"], ["b"]], vocab)
    for prev in (None, "a", "b", "zzz"):
        total = sum(np.exp(lm.log_prob(w, prev)) for w in vocab + ["</s>"])
        assert total == pytest.approx(1.0, abs=1e-9)


def test_span_mask_and_negatives():
    key = jax.random.PRNGKey(0)
    lengths = jnp.array([30, 12, 1])
    mask = losses.span_mask(key, lengths, 30, 0.2, 4)
    assert not mask[1, 12:].any() and mask.any(1).all()
    idx = np.asarray(losses.sample_negatives(jax.random.PRNGKey(1), mask, 10))
    m = np.asarray(mask)
    for b in range(2):
        for t in np.flatnonzero(m[b]):
            assert m[b, idx[b, t]].all()  # distractors are masked frames ...
            if m[b].sum() > 1:
                assert (idx[b, t] != t).all()  # ... other than the frame itself


def test_diversity_loss_bounds():
    valid = jnp.ones((2, 8), bool)
    uniform = jnp.full((2, 8, 2, 4), 0.25)
    collapsed = jax.nn.one_hot(jnp.zeros((2, 8, 2), jnp.int32), 4)
    assert float(losses.diversity(uniform, valid)) == pytest.approx(0.0, abs=1e-5)
    assert float(losses.diversity(collapsed, valid)) == pytest.approx(0.75, abs=1e-3)  # (GV - G) / GV


def test_contrastive_loss_prefers_matching_targets():
    key = jax.random.PRNGKey(0)
    targets = jax.random.normal(key, (2, 16, 8))
    mask = jnp.ones((2, 16), bool)
    good = losses.contrastive(key, targets, targets, mask, negatives=5, temperature=0.1)
    bad = losses.contrastive(key, -targets, targets, mask, negatives=5, temperature=0.1)
    assert float(good) < 0.1 < float(bad)


def test_output_layer_mapping():
    seen = PhoneSet(("a", "b", "t͡ʃ"))
    new = PhoneSet(("a", "t͡ʃ", "ɲ"))
    np.testing.assert_array_equal(remap_rows(seen, new), [0, 1, 3, -1])
    utt = Utterance("x", "", [], [["a", "t͡ʃ"]], np.zeros((1, 80)))
    np.testing.assert_array_equal(seen.mask([utt]), [True, True, False, True])


# ---------------------------------------------------------------- the train steps and the whole pipeline


def tiny_config():
    cfg = config_lib.load_config("whistle", "quick")
    cfg.seen_languages = ("es", "it")
    cfg.data.seen_train, cfg.data.seen_test, cfg.data.unseen_train, cfg.data.unseen_test = 24, 4, 16, 4
    cfg.data.lm_sentences, cfg.data.bpe_vocab = 50, 60
    cfg.data.synth.vocab_size = 60
    cfg.data.max_frames = 96
    cfg.data.synth.max_words = 2
    cfg.model.update({"dim": 16, "num_blocks": 1, "heads": 2, "kernel": 3, "ff_mult": 2, "vgg_channels": (2, 2)})
    cfg.ssl.update({"entries": 8, "code_dim": 8, "final_dim": 8, "negatives": 3})
    cfg.pretrain.steps, cfg.pretrain.batch_size = 4, 8
    cfg.finetune.steps, cfg.finetune.batch_size = 3, 8
    cfg.decode.beam = 2
    cfg.eval_fleurs = False
    cfg.eval_batch_size = 8
    cfg.checkpoint_every = 2
    cfg.log_every = 1
    return cfg


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(0)
    return {"feats": rng.standard_normal((8, 40, 80)).astype(np.float32),
            "feat_len": np.array([40, 36, 38, 40, 34, 37, 40, 39], np.int32),  # >= 9 frames after subsampling
            "labels": rng.integers(1, 9, (8, 4)).astype(np.int32), "label_len": np.full(8, 4, np.int32)}


# ssl is slow: a second model's compile; CI stays under 30 minutes
@pytest.mark.parametrize("kind", ["ctc", pytest.param("ssl", marks=pytest.mark.slow)])
def test_sharded_step_equals_single_device(kind, batch):
    cfg = tiny_config()
    state = train.init(cfg, jax.random.PRNGKey(0), optim=cfg.pretrain.optim, units=10, ssl=kind == "ssl")
    step = jax.jit(train.step_fn(kind, cfg))
    single, m1 = step(state, batch)
    mesh = sharding.make_mesh(4)
    sharded, m4 = step(sharding.replicate(state, mesh), sharding.shard_batch(batch, mesh))
    assert np.isfinite(float(m1["loss"]))
    np.testing.assert_allclose(float(m1["loss"]), float(m4["loss"]), rtol=1e-5)
    np.testing.assert_allclose(float(m1["grad_norm"]), float(m4["grad_norm"]), rtol=1e-4)
    for (path, a), (_, b) in zip(jax.tree_util.tree_leaves_with_path(single.params),
                                 jax.tree_util.tree_leaves_with_path(sharded.params)):
        name = jax.tree_util.keystr(path)
        if "['k']['bias']" in name:  # softmax ignores a key bias: its gradient is 0 up to rounding, which Adam
            continue                 # turns into +-lr steps of either sign
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=3e-6, err_msg=name)  # one Adam step here is 2e-5


def test_ctc_training_fits_a_fixed_batch(batch):
    cfg = tiny_config()
    cfg.spec_augment.update({"freq_masks": 0, "time_masks": 0})
    cfg.model.update({"dropout": 0.0, "input_dropout": 0.0})
    optim = ml_collections.ConfigDict({**cfg.pretrain.optim.to_dict(), "schedule": "constant", "lr": 1e-2,
                                       "warmup": 1})
    state = train.init(cfg, jax.random.PRNGKey(0), optim=optim, units=10)
    step = jax.jit(train.step_fn("ctc", cfg))
    first = None
    for _ in range(30):
        state, m = step(state, batch)
        first = first if first is not None else float(m["loss"])
    assert float(m["loss"]) < 0.7 * first


@pytest.mark.slow  # about a minute warm: four pre-trainings, four fine-tunings, decoding
def test_every_variant_runs_and_resumes(tmp_path):
    cfg = tiny_config()
    results = {}
    for variant in cfg.variants:
        results[variant] = run_one("whistle", cfg, variant, 0, tmp_path / variant, shared_dir=tmp_path / "shared")
    for variant, metrics in results.items():
        assert 0 <= metrics["unseen_per"] and 0 <= metrics["unseen_wer"], variant
    assert "seen_per" in results["phoneme_pretrain"] and "seen_wer" in results["subword_pretrain"]
    assert 0 <= results["subword_pretrain"]["seen_per"] and "seen_per_es" in results["subword_pretrain"]
    assert results["phoneme_pretrain"]["new_phones_pl"] < results["monolingual"]["new_phones_pl"]
    # a finished run restores its stages instead of training them again, with the same numbers
    again = run_one("whistle", cfg, "phoneme_pretrain", 0, tmp_path / "phoneme_pretrain",
                    shared_dir=tmp_path / "shared")
    assert again["unseen_per"] == results["phoneme_pretrain"]["unseen_per"]
    # a kill after step 2 of the fine-tuning: its last checkpoint and record are gone; the rerun continues exactly
    stage = tmp_path / "phoneme_pretrain" / "finetune_pl"
    losses_before = [r["loss"] for r in map(json.loads, (stage / "metrics.jsonl").open()) if r["split"] == "train"]
    (stage / "summary.json").unlink()
    shutil.rmtree(stage / "checkpoints" / str(cfg.finetune.steps))
    resumed = run_one("whistle", cfg, "phoneme_pretrain", 0, tmp_path / "phoneme_pretrain",
                      shared_dir=tmp_path / "shared")
    losses_after = [r["loss"] for r in map(json.loads, (stage / "metrics.jsonl").open()) if r["split"] == "train"]
    assert len(losses_before) == cfg.finetune.steps and losses_after == losses_before
    assert resumed["unseen_per"] == results["phoneme_pretrain"]["unseen_per"]


def test_bfloat16_step_matches_float32(batch):
    cfg = tiny_config()
    state = train.init(cfg, jax.random.PRNGKey(0), optim=cfg.pretrain.optim, units=10)
    _, m32 = jax.jit(train.step_fn("ctc", cfg))(state, batch)
    cfg.model.compute_dtype = "bfloat16"
    new, m16 = jax.jit(train.step_fn("ctc", cfg))(state, batch)
    assert jax.tree.leaves(new.params)[0].dtype == jnp.float32  # float32 master weights
    np.testing.assert_allclose(float(m16["loss"]), float(m32["loss"]), rtol=0.05)
    cfg.model.compute_dtype = "float16"
    with pytest.raises(ValueError, match="compute_dtype"):
        train.step_fn("ctc", cfg)
