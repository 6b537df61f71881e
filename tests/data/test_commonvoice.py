"""The Common Voice loader on a tiny fake release made here (MP3 clips, CV's tsv layout)."""
import numpy as np
import pytest
import soundfile

from jaxsuite.audio import espeak, features
from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data import commonvoice


def _fake_release(root):
    synth = espeak.synthesizer()
    folder = root / "pl"
    (folder / "clips").mkdir(parents=True)
    sentences = ["Dzień dobry!", "Kot śpi.", "Room 101", "Hello мир", "Tak, to jest dom"]
    lines = ["client_id\tpath\tsentence\tup_votes"]
    for i, sentence in enumerate(sentences):
        wav = features.resample(synth.synthesize(sentence, "pl"), synth.sample_rate, 48000)
        soundfile.write(folder / "clips" / f"c{i}.mp3", wav, 48000, format="MP3")
        lines.append(f"x\tc{i}.mp3\t{sentence}\t2")
    (folder / "train.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def test_commonvoice_split_normalises_filters_and_transcribes(tmp_path):
    root = _fake_release(tmp_path)
    rows = commonvoice.read_split(root, "pl", "train")
    assert [t for _, t in rows] == ["dzień dobry", "kot śpi", "tak to jest dom"]  # digits and Cyrillic dropped
    utts = commonvoice.load_split(root, "pl", "train")
    assert utts[0].phones == [["d͡ʑ", "ɛ", "ɲ"], ["d", "ɔ", "b", "r", "ɨ"]]
    assert utts[0].words == ["dzień", "dobry"] and utts[0].feats.shape[1] == 80
    assert 50 < len(utts[0].feats) < 300  # 48 kHz MP3 resampled to 16 kHz, 10 ms frames
    assert np.isfinite(utts[0].feats).all()
    sets = commonvoice.load({"pl": {"train": 2}}, root)
    assert len(sets["pl"]["train"]) == 2


def test_commonvoice_errors_name_the_file(tmp_path):
    with pytest.raises(DataMissingError, match="test.tsv"):
        commonvoice.read_split(tmp_path, "pl", "test")
    with pytest.raises(UserError, match="CV-Lang10"):
        commonvoice.read_split(tmp_path, "xx", "train")
    (tmp_path / "pl").mkdir()
    (tmp_path / "pl" / "dev.tsv").write_text("path\ttext\n")
    with pytest.raises(UserError, match="sentence"):
        commonvoice.read_split(tmp_path, "pl", "dev")
