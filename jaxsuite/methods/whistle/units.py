"""Output units: the shared IPA phone inventory (with per-language masks) and BPE subwords.

Index 0 is the CTC blank in every unit set. Whistle trains one phone inventory shared by all seen languages
(|V| = 75 for CV-Lang10) and, when fine-tuning on an unseen language, re-maps the output layer to that language's
phones (CAT local/tools/unpack_mulingual_param.py): rows of phones the inventory already has are copied, new
phones start from fresh rows.
"""
from __future__ import annotations

import dataclasses
import functools
import io

import numpy as np

from jaxsuite.data.speech import Utterance

BLANK = 0


@dataclasses.dataclass(frozen=True)
class PhoneSet:
    phones: tuple[str, ...]  # index i + 1 is phones[i]; 0 is the blank

    @classmethod
    def from_utterances(cls, utts: list[Utterance]) -> "PhoneSet":
        return cls(tuple(sorted({p for u in utts for p in u.phone_sequence})))

    @property
    def size(self) -> int:
        return len(self.phones) + 1

    @functools.cached_property
    def index(self) -> dict[str, int]:
        """phone -> unit id (built once per set; ``encode`` runs per utterance)."""
        return {p: i + 1 for i, p in enumerate(self.phones)}

    def encode(self, phones: list[str]) -> list[int]:
        return [self.index[p] for p in phones if p in self.index]

    def decode(self, ids) -> list[str]:
        return [self.phones[i - 1] for i in ids if i != BLANK]

    def mask(self, utts: list[Utterance]) -> np.ndarray:
        """[size] bool: the blank and the phones these utterances use (a language's output mask)."""
        used = {p for u in utts for p in u.phone_sequence}
        return np.array([True] + [p in used for p in self.phones])


def remap_rows(source: PhoneSet, target: PhoneSet) -> np.ndarray:
    """For each target unit, the source unit whose output row it inherits (-1 = none: a fresh row)."""
    return np.array([BLANK] + [source.index.get(p, -1) for p in target.phones], np.int32)


class Subwords:
    """BPE subwords (sentencepiece) over the seen languages' training text; id 0 is the blank."""

    def __init__(self, texts: list[str], vocab_size: int):
        import sentencepiece as spm

        model = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size, model_type="bpe",
            character_coverage=1.0, unk_id=1, bos_id=-1, eos_id=-1, pad_id=0, pad_piece="<blank>",
            hard_vocab_limit=False, num_threads=1, minloglevel=2)
        self._sp = spm.SentencePieceProcessor(model_proto=model.getvalue())

    @property
    def size(self) -> int:
        return self._sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return self._sp.encode(text)

    def decode(self, ids) -> str:
        return self._sp.decode([int(i) for i in ids if i != BLANK])
