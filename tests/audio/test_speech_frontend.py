"""eSpeak NG synthesis and G2P, IPA clean-up, filterbanks and SpecAugment."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxsuite.audio import espeak, features, ipa
from jaxsuite.core.errors import UserError
from jaxsuite.data import synth_lang10


def test_synthesis_is_speech_shaped():
    synth = espeak.synthesizer()
    a = synth.synthesize("dzień dobry", "pl", rate=150, pitch=40)
    fast = synth.synthesize("dzień dobry", "pl", rate=300, pitch=40)
    assert synth.sample_rate == 22050
    assert 0.3 * synth.sample_rate < len(a) < 3 * synth.sample_rate and np.abs(a).max() > 0.05
    assert len(fast) < 0.8 * len(a)
    assert len(synth.synthesize("bonjour", "fr-fr+f2")) > 0  # G2P codes also name voices
    with pytest.raises(UserError, match="no voice"):
        synth.synthesize("x", "xx-nonexistent")


def test_g2p_and_cleaning():
    words = ipa.clean_words(espeak.g2p(["dzień dobry"], "pl")[0])
    assert words == [["d͡ʑ", "ɛ", "ɲ"], ["d", "ɔ", "b", "r", "ɨ"]]
    assert ipa.clean_phone("ˈaː") == "a" and ipa.clean_phone("tʃ") == "t͡ʃ" and ipa.clean_phone("tʲ") == "t"
    assert ipa.clean_phone("[") == "" and ipa.clean_phone("ts") == "t͡s"


def test_fbank_and_mel_filters():
    t = np.arange(16000) / 16000
    tone = np.sin(2 * np.pi * 1000 * t).astype(np.float32)
    raw = features.fbank(tone, normalize=False)
    assert raw.shape == (98, 80)
    peak = raw.mean(0).argmax()
    centres = features.mel_filterbank().argmax(0) * 16000 / 512
    assert abs(centres[peak] - 1000) < 60  # the band around 1 kHz carries the energy
    norm = features.fbank(tone)
    np.testing.assert_allclose(norm.mean(0), 0, atol=1e-4)
    assert len(features.resample(np.zeros(22050, np.float32), 22050)) == 16000


def test_spec_augment_masks_within_each_utterance():
    feats = jnp.ones((3, 50, 20))
    lengths = jnp.array([50, 30, 10])
    out = features.spec_augment(jax.random.PRNGKey(0), feats, lengths, freq_masks=2, freq_width=0.3,
                                time_masks=3, time_width=0.2)
    masked = np.asarray(out == 0)
    full_time = masked.all(axis=2)  # frames masked across all bins = time masks
    for b, n in enumerate([50, 30, 10]):
        assert not full_time[b, n:].any()
        assert full_time[b].sum() <= 3 * (0.2 * n + 1)
    full_freq = masked.all(axis=1)
    assert (full_freq.sum(1) <= 2 * (0.3 * 20 + 1)).all()


@pytest.mark.slow  # spawns a synthesis process per split (keeps CI under 30 minutes)
def test_synth_lang10_is_deterministic_from_its_seed():
    cfg = ml_collections.ConfigDict({"vocab_size": 50, "min_words": 1, "max_words": 2, "rate_range": (140, 220),
                                     "pitch_range": (30, 70), "snr_db_range": (10.0, 30.0)})
    langs = {"pl": {"train": 3}, "es": {"test": 2}}
    a, b = synth_lang10.build(cfg, langs, 0), synth_lang10.build(cfg, langs, 0)
    other = synth_lang10.build(cfg, {"pl": {"train": 3}}, 1)
    for lang, splits in langs.items():
        for split, n in splits.items():
            assert len(a[lang][split]) == n
            for u, v in zip(a[lang][split], b[lang][split]):
                assert u.text == v.text and u.phones == v.phones
                np.testing.assert_array_equal(u.feats, v.feats)
    assert [u.text for u in other["pl"]["train"]] != [u.text for u in a["pl"]["train"]]
    assert a["es"]["test"][0].lang == "es" and a["pl"]["train"][0].phones
