"""FLEURS real-speech clips in ``$JAXSUITE_DATA/speech_fleurs`` (Conneau et al. 2022; 10 test clips per language,
Ogg/Opus at 16 kHz with normalised transcripts): a real-speech check of models trained on synthetic speech."""
from __future__ import annotations

from jaxsuite.core.errors import DataMissingError
from jaxsuite.data.cache import data_root
from jaxsuite.data.speech import Utterance, featurize, transcribe

FOLDER = "speech_fleurs"
LANGUAGES = {"en": "en-us", "de": "de", "fr": "fr-fr", "es": "es-419", "pt": "pt-br"}  # FLEURS configs' accents
MAX_FRAMES = 2048  # the longest clip is 17.9 s
MAX_LABEL_LEN = 400


def status() -> str:
    folder = data_root() / FOLDER
    return "present" if folder.is_dir() and any(folder.glob("fleurs-*.ogg")) else "missing"


def load(languages: list[str]) -> list[Utterance]:
    """Every clip of ``languages`` with its G2P phone transcript (eSpeak with the FLEURS accent's voice)."""
    import soundfile

    folder = data_root() / FOLDER
    if status() != "present":
        raise DataMissingError(f"FLEURS clips not found in {folder}: copy fleurs-<lang>-<nnn>.ogg/.txt there")
    out = []
    for lang in languages:
        clips = sorted(folder.glob(f"fleurs-{lang}-*.ogg"))
        texts = [c.with_suffix(".txt").read_text(encoding="utf-8").strip() for c in clips]
        phones = transcribe(texts, lang, LANGUAGES[lang])
        for clip, text, ph in zip(clips, texts, phones):
            wav, rate = soundfile.read(str(clip), dtype="float32")
            out.append(Utterance(lang, text, text.split(), ph, featurize(wav, rate)[:MAX_FRAMES]))
    return out
