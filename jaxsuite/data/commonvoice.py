"""Common Voice releases on disk -> the CV-Lang10 splits with IPA transcripts (Whistle, Sec. 4.1).

Expects ``<root>/<locale>/{train,dev,test}.tsv`` and ``<root>/<locale>/clips/`` as a Common Voice release unpacks
(``root`` defaults to ``$JAXSUITE_DATA/commonvoice``); Common Voice cannot be downloaded without accepting its
terms, so it is never fetched. Like CAT's data preparation, sentences are lower-cased, punctuation is removed,
and a sentence with characters outside its language's script is dropped; the G2P is eSpeak NG (the paper's is
LanguageNet) with the same IPA clean-up as synth_lang10.
"""
from __future__ import annotations

import csv
import unicodedata
from pathlib import Path

from jaxsuite.core.errors import DataMissingError, UserError
from jaxsuite.data.cache import data_root
from jaxsuite.data.speech import Sets, Utterance, cache_key, cached, featurize, transcribe

# CV-Lang10's languages: Common Voice locale, eSpeak voice, script of the transcripts
LANGUAGES = {
    "en": ("en", "en-us", "LATIN"), "es": ("es", "es", "LATIN"), "fr": ("fr", "fr-fr", "LATIN"),
    "it": ("it", "it", "LATIN"), "ky": ("ky", "ky", "CYRILLIC"), "nl": ("nl", "nl", "LATIN"),
    "ru": ("ru", "ru", "CYRILLIC"), "sv": ("sv-SE", "sv", "LATIN"), "tr": ("tr", "tr", "LATIN"),
    "tt": ("tt", "tt", "CYRILLIC"), "pl": ("pl", "pl", "LATIN"), "id": ("id", "id", "LATIN"),
}
SPLITS = ("train", "dev", "test")


def default_root() -> Path:
    return data_root() / "commonvoice"


def normalise(sentence: str, script: str) -> str | None:
    """Lower-case, punctuation (but word-internal apostrophes) and symbols removed, spaces collapsed; None if a letter is of another script."""
    out = []
    for ch in unicodedata.normalize("NFC", sentence.lower()):
        cat = unicodedata.category(ch)
        if ch in "'’":  # apostrophes belong to words (it's, l'eau)
            out.append("'")
        elif cat[0] in "PS":
            out.append(" ")
        elif cat[0] == "L":
            if script not in unicodedata.name(ch, ""):
                return None
            out.append(ch)
        elif ch.isspace() or cat[0] == "M":
            out.append(ch if cat[0] == "M" else " ")
        else:  # digits and other characters have no single reading: drop the sentence
            return None
    text = " ".join(w.strip("'") for w in "".join(out).split() if w.strip("'"))
    return text or None


def read_split(root: Path, lang: str, split: str) -> list[tuple[Path, str]]:
    """(clip path, normalised sentence) of a split's tsv, sentences that fail :func:`normalise` left out."""
    if lang not in LANGUAGES:
        raise UserError(f"Common Voice language {lang!r} is not one of CV-Lang10's {sorted(LANGUAGES)}")
    if split not in SPLITS:
        raise UserError(f"Common Voice split {split!r} is not one of {SPLITS}")
    locale, _, script = LANGUAGES[lang]
    tsv = Path(root) / locale / f"{split}.tsv"
    if not tsv.is_file():
        raise DataMissingError(f"{tsv} not found: unpack a Common Voice release so that {Path(root)}/<locale>/ "
                               f"holds train.tsv, dev.tsv, test.tsv and clips/")
    rows = []
    with tsv.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = {"path", "sentence"} - set(reader.fieldnames or ())
        if missing:
            raise UserError(f"{tsv} lacks the column(s) {sorted(missing)}")
        for row in reader:
            text = normalise(row["sentence"] or "", script)
            if text:
                rows.append((tsv.parent / "clips" / row["path"], text))
    return rows


def load_split(root: Path, lang: str, split: str, limit: int | None = None) -> list[Utterance]:
    """The first ``limit`` usable utterances of a split (all when None), with features and IPA."""
    import soundfile

    rows = read_split(root, lang, split)[:limit]
    _, voice, _ = LANGUAGES[lang]
    phones = transcribe([text for _, text in rows], lang, voice)
    out = []
    for (clip, text), ph in zip(rows, phones):
        if not clip.is_file():
            raise DataMissingError(f"clip {clip} listed in {split}.tsv is missing")
        wav, rate = soundfile.read(str(clip), dtype="float32", always_2d=True)
        out.append(Utterance(lang, text, text.split(), ph, featurize(wav.mean(1), rate)))
    return out


def load(langs: dict[str, dict[str, int | None]], root: Path | None = None) -> Sets:
    """{lang: {split: [Utterance]}} for ``langs`` = {lang: {split: limit}}, cached with ``datasets``."""
    root = Path(root) if root else default_root()
    key = cache_key({"root": str(root.resolve()), "langs": langs, "version": 1})
    return cached("commonvoice", key, lambda: {lang: {split: load_split(root, lang, split, n)
                                                      for split, n in splits.items()}
                                               for lang, splits in langs.items()})
