"""IPA clean-up of G2P output into one shared phone inventory (Whistle, Sec. 3.1 and CAT local/data_prep.md).

The paper cleans LanguageNet's output: length, stress and palatalisation marks are stripped, and affricates are
written as one tied symbol (``ts`` -> ``t͡s``), so the same sound is one unit in every language. eSpeak's phones
get the same treatment here; symbols that are not IPA letters (eSpeak's ``[`` and capital placeholders) are
dropped.
"""
from __future__ import annotations

import unicodedata

STRIP = set("ˈˌːˑʲ̩̯͡‿-_[]()0123456789'\"")
AFFRICATES = {"ts": "t͡s", "dz": "d͡z", "tʃ": "t͡ʃ", "dʒ": "d͡ʒ", "tɕ": "t͡ɕ", "dʑ": "d͡ʑ", "tʂ": "t͡ʂ", "dʐ": "d͡ʐ",
              "pf": "p͡f", "ʈʂ": "ʈ͡ʂ", "ɖʐ": "ɖ͡ʐ"}


def clean_phone(phone: str) -> str:
    """One eSpeak phone -> its cleaned IPA unit ('' when nothing is left)."""
    phone = unicodedata.normalize("NFD", phone)
    kept = "".join(ch for ch in phone if ch not in STRIP and not (ch.isascii() and ch.isupper()))
    kept = unicodedata.normalize("NFC", kept)
    return AFFRICATES.get(kept, kept)


def clean_words(words: list[list[str]]) -> list[list[str]]:
    """Cleaned phones per word (words left empty are dropped)."""
    out = []
    for word in words:
        phones = [p for p in (clean_phone(p) for p in word) if p]
        if phones:
            out.append(phones)
    return out


def flatten(words: list[list[str]]) -> list[str]:
    return [p for w in words for p in w]
