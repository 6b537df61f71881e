"""UniVL: the attention masks as properties of the networks (chex), the losses against naive loops, the
pre-training corruptions, beam search against a greedy loop, the metrics, the generator's compositional split, the
tokenizer, a sharded step equal to the single-device step, exact resume, and every variant through the reproduce
path (slow)."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.core.config import load_config
from jaxsuite.core.errors import ConfigError, UserError
from jaxsuite.core.runner import run_one
from jaxsuite.data import moving_shapes
from jaxsuite.methods.univilm import data as univl_data
from jaxsuite.methods.univilm import decoding, experiment, losses, masking, metrics, networks, tokenizer, train
from tests.helpers import assert_sharded_step_equals_single_device_step

TINY = ["data.pretrain_videos=8", "data.train_clips=8", "data.test_clips=6", "data.val_clips=6", "data.vocab_size=100",
        "model.dim=16", "model.heads=2", "model.ffn=32", "model.text_layers=1", "model.video_layers=1",
        "model.cross_layers=1", "model.decoder_layers=1", "pretrain.stage1_steps=2", "pretrain.stage2_steps=2",
        "pretrain.batch_videos=4", "finetune.retrieval_steps=2", "finetune.caption_steps=2",
        "finetune.batch_size=4", "eval.beam=2", "eval.max_len=6", "eval.batch_size=6", "checkpoint_every=2",
        "log_every=1"]


@pytest.fixture(scope="module")
def cfg():
    return load_config("univilm", "quick", TINY)


@pytest.fixture(scope="module")
def splits(cfg):
    return univl_data.load(cfg)


@pytest.fixture(scope="module")
def model(cfg, splits):
    from flax import nnx

    m = networks.build(cfg, nnx.Rngs(params=0), splits["codec"].vocab_size)
    # every parameter perturbed (biases and LayerNorm offsets start at zero), so no masking bug hides behind zeros
    params = nnx.state(m, nnx.Param)
    leaves, tree = jax.tree.flatten(params)
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    nnx.update(m, jax.tree.unflatten(tree, [x + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]))
    return m


def _rows(arrays, n):
    return {k: jnp.asarray(v[:n]) for k, v in arrays.items()}


# --- networks: masks ----------------------------------------------------------------------------------------------
def test_padding_is_invisible_to_every_encoder_and_the_decoder_is_causal(model, splits):
    d = _rows(splits["train"], 3)
    ids, tvalid, video, vvalid = d["text_ids"], d["text_valid"], d["video"], d["video_valid"]
    seq, vis = model.encode(ids, tvalid, video, vvalid)
    # change what sits in the padding: token ids and frame features
    ids2 = jnp.where(tvalid, ids, 7)
    video2 = jnp.where(vvalid[..., None], video, 3.0)
    seq2, vis2 = model.encode(ids2, tvalid, video2, vvalid)
    chex.assert_trees_all_close(jnp.where(tvalid[..., None], seq, 0), jnp.where(tvalid[..., None], seq2, 0),
                                atol=1e-5)
    chex.assert_trees_all_close(jnp.where(vvalid[..., None], vis, 0), jnp.where(vvalid[..., None], vis2, 0),
                                atol=1e-5)
    out, pooled, valid = model.cross(seq, vis, tvalid, vvalid)
    out2, pooled2, _ = model.cross(jnp.where(tvalid[..., None], seq, -5.0), jnp.where(vvalid[..., None], vis, 9.0),
                                   tvalid, vvalid)
    chex.assert_trees_all_close(pooled, pooled2, atol=1e-5)
    chex.assert_trees_all_close(jnp.where(valid[..., None], out, 0), jnp.where(valid[..., None], out2, 0), atol=1e-5)
    # decoder: logits at position t depend on tokens <= t only, and not on padded memory
    caption_in, in_valid, _ = masking.caption_io(ids, tvalid, sep_id=splits["codec"].sep)
    logits = model.decode(caption_in, in_valid, out, valid)
    t = 3
    changed = caption_in.at[:, t + 1:].set(9)
    logits2 = model.decode(changed, in_valid, out, valid)
    chex.assert_trees_all_close(logits[:, :t + 1], logits2[:, :t + 1], atol=1e-5)
    assert not np.allclose(logits[:, t + 1:], logits2[:, t + 1:])
    logits3 = model.decode(caption_in, in_valid, jnp.where(valid[..., None], out, 4.0), valid)
    chex.assert_trees_all_close(logits, logits3, atol=1e-5)


def test_cross_similarity_scores_every_pair_as_its_own_cross_pass(model, splits):
    d = _rows(splits["train"], 3)
    seq, vis = model.encode(d["text_ids"], d["text_valid"], d["video"], d["video_valid"])
    sim = model.cross_similarity(seq, vis, d["text_valid"], d["video_valid"])
    for i in range(3):
        for j in range(3):
            _, pooled, _ = model.cross(seq[i:i + 1], vis[j:j + 1], d["text_valid"][i:i + 1], d["video_valid"][j:j + 1])
            np.testing.assert_allclose(sim[i, j], model.similarity_dense(pooled)[0, 0], rtol=1e-4, atol=1e-5)


# --- losses against naive loops ---------------------------------------------------------------------------------
def _naive_mil_nce(sim, n_pair):
    n = sim.shape[0]
    batch = n // n_pair
    total = []
    for b in range(batch):
        i = b * n_pair + n_pair // 2  # the anchor: the middle clip
        own = [j for j in range(n) if j // n_pair == b]
        # row i of [sim.T | sim with own-video entries removed]
        logits = list(sim[:, i]) + [sim[i, j] for j in range(n) if j not in own]
        pos = [sim[j, i] for j in own]
        total.append(-(np.logaddexp.reduce(pos) - np.logaddexp.reduce(logits)))
    return np.mean(total)


def _naive_mfm(pred, video, valid, masked):
    b, f, d = pred.shape
    out = []
    frames = [(i, j) for i in range(b) for j in range(f) if valid[i, j]]
    for i in range(b):
        for j in range(f):
            if masked[i, j]:
                scores = np.asarray([pred[i, j] @ video[k, m] for k, m in frames])
                true = pred[i, j] @ video[i, j]
                out.append(-(true - np.logaddexp.reduce(scores)))
    return np.mean(out)


def test_mil_nce_and_masked_frame_nce_equal_naive_loops():
    rng = np.random.default_rng(0)
    for batch, n_pair in ((4, 3), (3, 1), (2, 2)):
        sim = rng.normal(size=(batch * n_pair, batch * n_pair)) * 2
        np.testing.assert_allclose(losses.mil_nce(jnp.asarray(sim), n_pair), _naive_mil_nce(sim, n_pair), rtol=1e-5)
    pred, video = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    valid = np.ones((3, 5), bool)
    valid[1, 3:] = False
    masked = (rng.random((3, 5)) < 0.5) & valid
    masked[0, 0] = True
    got = losses.masked_frame_nce(jnp.asarray(pred), jnp.asarray(video), jnp.asarray(valid), jnp.asarray(masked))
    np.testing.assert_allclose(got, _naive_mfm(pred, video, valid, masked), rtol=1e-5)


def test_ranking_losses_equal_their_definitions():
    rng = np.random.default_rng(1)
    sim = rng.normal(size=(5, 5))
    hinge = [max(0, 0.1 + sim[i, j] - sim[i, i]) + max(0, 0.1 + sim[i, j] - sim[j, j])
             for i in range(5) for j in range(5)]
    np.testing.assert_allclose(losses.max_margin_ranking(jnp.asarray(sim), margin=0.1), np.mean(hinge), rtol=1e-6)
    ce = np.mean([-(sim[i, i] - np.logaddexp.reduce(sim[i])) for i in range(5)])
    np.testing.assert_allclose(losses.cross_entropy_retrieval(jnp.asarray(sim)), ce, rtol=1e-6)
    labels = np.asarray([[-1, 2, -1], [0, -1, -1]])
    logits = rng.normal(size=(2, 3, 4))
    want = np.mean([-(logits[0, 1, 2] - np.logaddexp.reduce(logits[0, 1])),
                    -(logits[1, 0, 0] - np.logaddexp.reduce(logits[1, 0]))])
    np.testing.assert_allclose(losses.masked_lm(jnp.asarray(logits), jnp.asarray(labels)), want, rtol=1e-6)


# --- corruptions ----------------------------------------------------------------------------------------------------
def test_token_masking_follows_the_official_rates_and_never_touches_special_or_padding():
    n, length, vocab = 4000, 12, 50
    ids = np.full((n, length), 0)
    ids[:, 0], ids[:, 1:9], ids[:, 9] = 2, 7, 3  # [CLS] w*8 [SEP] [PAD]*2
    valid = ids != 0
    out, labels = masking.mask_tokens(jax.random.PRNGKey(0), jnp.asarray(ids), jnp.asarray(valid), vocab_size=vocab,
                                      mask_id=4)
    out, labels = np.asarray(out), np.asarray(labels)
    chosen = labels >= 0
    assert not chosen[:, [0, 9, 10, 11]].any()
    np.testing.assert_array_equal(out[:, [0, 9, 10, 11]], ids[:, [0, 9, 10, 11]])
    assert abs(chosen[:, 1:9].mean() - 0.15) < 0.01
    assert (labels[chosen] == 7).all()
    replaced = out[chosen]
    assert abs((replaced == 4).mean() - 0.8) < 0.03 and abs((replaced == 7).mean() - 0.1 - 1 / vocab * 0.1) < 0.03
    np.testing.assert_array_equal(out[~chosen], ids[~chosen])
    frames_valid = np.ones((200, 10), bool)
    frames_valid[:, 8:] = False
    video, masked = masking.mask_frames(jax.random.PRNGKey(1), jnp.ones((200, 10, 3)), jnp.asarray(frames_valid))
    assert not np.asarray(masked)[:, 8:].any() and abs(np.asarray(masked)[:, :8].mean() - 0.15) < 0.02
    np.testing.assert_array_equal(np.asarray(video)[..., 0] == 0, np.asarray(masked))


def test_enhanced_v_drops_whole_videos_and_caption_io_shifts_the_transcript():
    ids = np.tile(np.asarray([2, 9, 8, 3, 0], np.int32), (400, 3, 1))
    valid = ids != 0
    out, ovalid = masking.enhance_video(jax.random.PRNGKey(0), jnp.asarray(ids), jnp.asarray(valid), 0.15,
                                        cls_id=2, sep_id=3)
    out, ovalid = np.asarray(out), np.asarray(ovalid)
    dropped = (out[:, :, 1] == 3)
    assert (dropped == dropped[:, :1]).all()  # all clips of a video together
    assert 0.1 < dropped[:, 0].mean() < 0.2
    np.testing.assert_array_equal(out[dropped[:, 0]][..., :2], np.broadcast_to([2, 3], (dropped[:, 0].sum(), 3, 2)))
    assert ovalid[dropped[:, 0]].sum(-1).max() == 2
    cin, cvalid, target = masking.caption_io(jnp.asarray(ids[:2, 0]), jnp.asarray(valid[:2, 0]), sep_id=3)
    np.testing.assert_array_equal(cin[0], [2, 9, 8, 0])
    np.testing.assert_array_equal(target[0], [9, 8, 3, 0])
    np.testing.assert_array_equal(cvalid[0], [True, True, True, False])


# --- decoding and metrics -------------------------------------------------------------------------------------------
def test_beam_of_one_is_the_greedy_loop_and_wider_beams_stop_at_the_separator(model, splits):
    d = _rows(splits["test"], 2)
    sp = train.specials_of(splits["codec"])
    ids, tvalid = train.video_only_text(2, sp)
    seq, vis = model.encode(ids, tvalid, d["video"], d["video_valid"])
    mem, _, mvalid = model.cross(seq, vis, tvalid, d["video_valid"])
    got = decoding.beam_search(model, mem, mvalid, beam=1, max_len=6, cls_id=sp.cls, sep_id=sp.sep)
    tokens = np.full((2, 7), sp.pad)
    tokens[:, 0] = sp.cls
    done = np.zeros(2, bool)
    for t in range(6):
        logits = model.decode(jnp.asarray(tokens[:, :6]), jnp.asarray(np.arange(6)[None] <= t).repeat(2, 0), mem,
                              mvalid)
        nxt = np.asarray(jnp.argmax(logits[:, t], -1))
        tokens[:, t + 1] = np.where(done, sp.pad, nxt)
        done |= nxt == sp.sep
    np.testing.assert_array_equal(got, tokens[:, 1:])
    wide = np.asarray(decoding.beam_search(model, mem, mvalid, beam=3, max_len=6, cls_id=sp.cls, sep_id=sp.sep))
    for row in wide:  # nothing but padding after the first [SEP]
        hits = np.flatnonzero(row == sp.sep)
        assert hits.size == 0 or (row[hits[0] + 1:] == sp.pad).all()


def test_retrieval_and_caption_metrics():
    sim = np.asarray([[0.9, 0.1, 0.2], [0.8, 0.5, 0.1], [0.1, 0.2, 0.3]])
    m = metrics.retrieval_metrics(sim)
    assert m["r1"] == pytest.approx(200 / 3) and m["r5"] == 100.0 and m["medr"] == 1.0
    caps = ["a red circle moves left then a blue square grows", "a white cross shrinks then a green square moves up"]
    perfect = metrics.caption_metrics(caps, [[c] for c in caps])
    assert perfect["bleu4"] == pytest.approx(1.0, abs=1e-6) and perfect["rouge_l"] == pytest.approx(1.0)
    worse = metrics.caption_metrics([caps[1], caps[0]], [[c] for c in caps])
    assert worse["bleu4"] < 0.7 and worse["cider"] < perfect["cider"]


# --- data --------------------------------------------------------------------------------------------------------
def test_generator_is_deterministic_and_its_split_is_compositional():
    a = moving_shapes.generate("test", 20, 0)
    b = moving_shapes.generate("test", 20, 0)
    np.testing.assert_array_equal(a["frames"][5], b["frames"][5])
    pairs = lambda text: {tuple(p.split()[1:3]) for p in text.split(" then ")}
    assert all(pairs(t) & set(moving_shapes.HELDOUT) for t in a["text"])
    train_text = moving_shapes.generate("train", 50, 0)["text"]
    assert not any(pairs(t) & set(moving_shapes.HELDOUT) for t in train_text)
    pre = moving_shapes.generate("pretrain", 5, 0, clips_per_video=3)
    assert len(pre["frames"][0]) == 3 and len(pre["text"][0]) == 3
    clip = a["frames"][0]
    assert clip.shape[1:] == (32, 32, 3) and clip.shape[0] in (8, 12) and clip.max() <= 1.0
    assert set(" ".join(train_text).split()) <= set(moving_shapes.corpus_words())


def test_validation_clips_are_the_test_streams_next_clips_disjoint_from_test_with_held_out_pairs(cfg, splits):
    """Validation is drawn as test is (every clip holds a held-out pair) from indices past the test set's, so the
    test clips are unchanged and no clip is in both."""
    d = cfg.data
    gen = moving_shapes.generate("test", d.test_clips + d.val_clips, d.seed, frames_per_event=d.frames_per_event)
    assert splits["captions"]["test"] == moving_shapes.generate("test", d.test_clips, d.seed)["text"]
    assert splits["captions"]["val"] == gen["text"][d.test_clips:]
    pairs = lambda text: {tuple(p.split()[1:3]) for p in text.split(" then ")}
    assert all(pairs(t) & set(moving_shapes.HELDOUT) for t in splits["captions"]["val"])
    assert splits["val"]["video"].shape == (d.val_clips, d.max_frames, d.feature_dim)
    test_rows = {v.tobytes() for v in splits["test"]["video"]}
    assert not any(v.tobytes() in test_rows for v in splits["val"]["video"])
    assert not any(v.tobytes() in test_rows for v in splits["train"]["video"])


def test_paper_scale_validation_holds_out_whole_training_videos_seeded_by_index():
    ids = np.asarray(["a", "a", "b", "c", "c", "c", "d", "e", "e", "f"])
    arrays = {"video_id": ids, "row": np.arange(len(ids))}
    train_part, val_part = univl_data.hold_out_videos(arrays, 0.34, seed=0)
    assert len(set(val_part["video_id"])) == 2  # round(6 x 0.34) of the 6 videos, with all of their clips
    assert not set(val_part["video_id"]) & set(train_part["video_id"])
    assert sorted([*train_part["row"], *val_part["row"]]) == list(range(len(ids)))
    again = univl_data.hold_out_videos(arrays, 0.34, seed=0)[1]
    np.testing.assert_array_equal(again["row"], val_part["row"])
    other = [tuple(univl_data.hold_out_videos(arrays, 0.34, seed=s)[1]["video_id"]) for s in range(8)]
    assert len(set(other)) > 1  # the seed picks the videos
    _, one = univl_data.hold_out_videos(arrays, 0.34, seed=0, one_per_video=True)  # MSR-VTT: one caption each
    assert sorted(one["video_id"]) == sorted(set(val_part["video_id"]))
    with pytest.raises(UserError, match="at least 2"):
        univl_data.hold_out_videos({"video_id": np.asarray(["a", "a"])}, 0.5, seed=0)


def test_tokenizer_round_trips_and_reads_a_bert_vocab_file(splits, tmp_path):
    codec = splits["codec"]
    assert train.specials_of(codec) == train.Specials()  # the ids the module-level train_step assumes
    ids, valid = codec.encode(["a purple cross moves right then a white circle grows"], 24)
    assert ids[0, 0] == codec.cls and ids[0, valid[0].sum() - 1] == codec.sep
    assert codec.decode(ids) == ["a purple cross moves right then a white circle grows"]
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join([*tokenizer.SPECIAL, "a", "red", "circle", "##s"]))
    bert = tokenizer.TextCodec(tokenizer.from_vocab_file(vocab))
    ids, _ = bert.encode(["A red circles"], 8)
    assert ids[0].tolist()[:6] == [2, 5, 6, 7, 8, 3]
    with pytest.raises(UserError, match="vocab.txt"):
        tokenizer.from_vocab_file(tmp_path / "missing" / "vocab.txt")


def test_bad_config_is_a_config_error_naming_the_key():
    for overrides, key in ((["data.name=howto"], "data.name"), (["model.dim=30"], "model.dim"),
                           (["eval.max_len=40"], "eval.max_len"), (["pretrain.second_stage=both"],
                                                                   "pretrain.second_stage")):
        with pytest.raises(ConfigError, match=key):
            experiment.check_data(load_config("univilm", "quick", overrides))


# --- training ----------------------------------------------------------------------------------------------------
def _check_sharded(cfg, splits, stage):
    state = train.init_phase(cfg, f"stage{stage}", jax.random.PRNGKey(0), vocab_size=splits["codec"].vocab_size)
    metrics_ = assert_sharded_step_equals_single_device_step(_pretrain_step(cfg, splits, stage), state,
                                                             _rows(splits["pretrain"], 4), atol=1e-5)
    names = train.PRETRAIN_LOSSES if stage == 2 else ("joint",)
    assert set(metrics_) >= {f"loss_{k}" for k in names}


def _pretrain_step(cfg, splits, stage):
    p = cfg.pretrain
    return train.pretrain_step_for(stage, train.specials_of(splits["codec"]), bool(p.align_all_clips),
                                   float(p.joint_temperature), str(p.mil_anchors))


@pytest.mark.slow
def test_stage_one_step_sharded_over_4_devices_equals_the_single_device_step(cfg, splits):
    """Stage I: MIL-NCE couples every example of the batch, across the devices (about 25 s warm, more cold)."""
    _check_sharded(cfg, splits, 1)


@pytest.mark.slow
def test_stage_two_step_sharded_over_4_devices_equals_the_single_device_step(cfg, splits):
    """Stage II adds the batch-wide masked-frame NCE and the B x B cross-encoder alignment (80 s to compile)."""
    _check_sharded(cfg, splits, 2)


def test_pretraining_stopped_and_resumed_ends_where_an_uninterrupted_run_ends(cfg, splits, tmp_path):
    from jaxsuite.core.loop import fit_arrays

    def fit(steps, workdir):
        init = lambda: train.init_phase(cfg, "stage1", jax.random.PRNGKey(0), vocab_size=splits["codec"].vocab_size)
        return fit_arrays(cfg, init_fn=init, train_step=_pretrain_step(cfg, splits, 1), arrays=splits["pretrain"],
                          num_steps=steps, batch_size=4, seed=0, workdir=workdir, desc="t", progress=False,
                          jit_init=False).state

    whole = fit(4, tmp_path / "whole")
    fit(2, tmp_path / "split")
    resumed = fit(4, tmp_path / "split")
    chex.assert_trees_all_equal(resumed.params, whole.params)
    chex.assert_trees_all_equal(resumed.opt_state, whole.opt_state)


@pytest.mark.slow
def test_every_variant_runs_through_the_reproduce_path(cfg, tmp_path):
    with_align = cfg.copy_and_resolve_references()
    with_align.finetune.align_steps = 2  # FT-Align too, for the reference variant
    for variant in experiment.VARIANTS:
        run_cfg = with_align if variant == experiment.REFERENCE else cfg
        found = run_one("univilm", run_cfg, variant, 0, tmp_path / variant, shared_dir=tmp_path / "shared",
                        progress=False)
        assert all(np.isfinite(found[k]) and np.isfinite(found[f"val_{k}"]) for k in experiment.METRICS), variant
        assert 0.0 <= found["retrieval_r1"] <= 100.0 and found["retrieval_medr"] >= 1.0
        if variant == experiment.REFERENCE:
            assert 0.0 <= found["extra/align_r1"] <= 100.0 and 0.0 <= found["extra/val_align_r1"] <= 100.0
    # stage I is shared by the seed's StagedP variants
    assert len(list((tmp_path / "shared").glob("stage1-s0-*"))) == 1


def test_official_layouts_are_read_howto100m_youcookii_and_msrvtt(tmp_path):
    import json
    import pickle

    from jaxsuite.methods.univilm import official_data

    rng = np.random.default_rng(0)
    (tmp_path / "feats").mkdir()
    np.save(tmp_path / "feats" / "v1.npy", rng.normal(size=(30, 8)).astype(np.float32))
    (tmp_path / "howto.csv").write_text("video_id,feature_file\nv1,v1.npy\nv2,v2.npy\n")
    caps = {"v1": {"start": np.asarray([0.0, 5.0, 9.0]), "end": np.asarray([4.0, 8.0, 29.0]),
                   "text": np.asarray(["cut the onion", "add salt", "stir"])},
            "v2": {"start": np.asarray([0.0]), "end": np.asarray([3.0]), "text": np.asarray(["too short"])}}
    (tmp_path / "caption.pickle").write_bytes(pickle.dumps(caps))
    pre = official_data.howto100m(tmp_path / "howto.csv", tmp_path / "caption.pickle", tmp_path / "feats", count=5,
                                  clips_per_video=3, max_frames=6, feature_dim=8)
    assert pre["video"].shape == (1, 3, 6, 8) and pre["text"].tolist() == [["cut the onion", "add salt", "stir"]]
    feats = np.load(tmp_path / "feats" / "v1.npy")
    np.testing.assert_array_equal(pre["video"][0, 0, :5], feats[0:5])  # seconds 0..4 at 1 feature per second
    assert pre["video_valid"][0, 0].sum() == 5 and pre["video_valid"][0, 2].all()  # 21 s sampled down to 6
    # YouCookII
    data = {"a": {"start": [0, 10], "end": [3, 12], "text": ["crack eggs", "whisk"]}}
    (tmp_path / "youcookii_data.transcript.pickle").write_bytes(pickle.dumps(data))
    (tmp_path / "youcookii_videos_features.pickle").write_bytes(pickle.dumps({"a": feats}))
    (tmp_path / "youcookii_train.csv").write_text("video_id\na\n")
    yc = official_data.youcookii(tmp_path, "train", max_frames=6, feature_dim=8)
    assert yc["text"].tolist() == ["crack eggs", "whisk"] and yc["video_valid"].sum(1).tolist() == [4, 3]
    # MSR-VTT
    (tmp_path / "msrvtt_videos_features.pickle").write_bytes(pickle.dumps({"video7": feats[:4]}))
    (tmp_path / "MSRVTT_train.9k.csv").write_text("video_id\nvideo7\n")
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps({"sentences": [
        {"video_id": "video7", "caption": "a man talks"}, {"video_id": "video7", "caption": "a person speaks"},
        {"video_id": "video9", "caption": "not in the split"}]}))
    (tmp_path / "MSRVTT_JSFUSION_test.csv").write_text("key,vid_key,video_id,sentence\nx,y,video7,a man talks\n")
    assert official_data.msrvtt(tmp_path, "train", max_frames=6, feature_dim=8)["text"].tolist() == \
        ["a man talks", "a person speaks"]
    assert official_data.msrvtt(tmp_path, "test", max_frames=6, feature_dim=8)["video"].shape == (1, 6, 8)
    # errors name the file
    (tmp_path / "evil.pickle").write_bytes(pickle.dumps(__import__("os").getcwd))
    with pytest.raises(UserError, match="evil.pickle"):
        official_data.load_pickle(tmp_path / "evil.pickle", "caption pickle")
    with pytest.raises(UserError, match="youcookii_val.csv"):
        official_data.youcookii(tmp_path, "test", max_frames=6, feature_dim=8)
    # the paper presets' path: YouCookII's val csv is the test split; validation is held out of train by video
    data["b"] = {"start": [0], "end": [2], "text": ["pour milk"]}
    (tmp_path / "youcookii_data.transcript.pickle").write_bytes(pickle.dumps(data))
    (tmp_path / "youcookii_videos_features.pickle").write_bytes(pickle.dumps({"a": feats, "b": feats[5:]}))
    (tmp_path / "youcookii_train.csv").write_text("video_id\na\nb\n")
    (tmp_path / "youcookii_val.csv").write_text("video_id\na\n")
    cfg = load_config("univilm", "paper", [
        "data.name=youcookii", f"data.root={tmp_path}", f"data.howto_csv={tmp_path / 'howto.csv'}",
        f"data.howto_captions={tmp_path / 'caption.pickle'}", f"data.howto_features={tmp_path / 'feats'}",
        "data.pretrain_videos=1", "data.max_frames=6", "data.feature_dim=8", "data.max_words=8",
        "data.vocab_size=40", "data.vocab_file=", "data.val_fraction=0.5"])
    loaded = univl_data.load(cfg)
    assert loaded["captions"]["test"] == ["crack eggs", "whisk"]
    split_of = {tuple(loaded["captions"][k]) for k in ("train", "val")}
    assert split_of == {("crack eggs", "whisk"), ("pour milk",)}  # one video each, never split
