"""Text <-> token ids for UniVL: a HuggingFace ``tokenizers`` WordPiece model, BERT-style.

:func:`train_wordpiece` learns the vocabulary from a corpus (the quick preset's); :func:`from_vocab_file` reads a
BERT ``vocab.txt`` a user supplies (bert-base-uncased for the paper preset). Both lower-case and split on
whitespace and punctuation as BERT does. :class:`TextCodec` adds [CLS] / [SEP], pads with [PAD] = id 0 and
truncates as the official dataloaders (``[CLS] + words[:max_words - 2] + [SEP]``), and decodes ids back to text.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from jaxsuite.core.errors import UserError

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def _bert_like(model) -> Tokenizer:
    tok = Tokenizer(model)
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    return tok


def train_wordpiece(texts, vocab_size: int) -> Tokenizer:
    tok = _bert_like(models.WordPiece(unk_token="[UNK]"))
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL), show_progress=False)
    tok.train_from_iterator(list(texts), trainer)
    return tok


def from_vocab_file(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"vocabulary file {path} not found (config key 'data.vocab_file': a BERT vocab.txt)")
    tok = _bert_like(models.WordPiece.from_file(str(path), unk_token="[UNK]"))
    missing = [s for s in SPECIAL if tok.token_to_id(s) is None]
    if missing:
        raise UserError(f"vocabulary file {path} lacks the special tokens {missing}")
    return tok


class TextCodec:
    def __init__(self, tokenizer: Tokenizer):
        self.tokenizer = tokenizer
        self.vocab_size = tokenizer.get_vocab_size()
        self.pad, self.unk, self.cls, self.sep, self.mask = (tokenizer.token_to_id(s) for s in SPECIAL)
        if self.pad != 0:
            raise UserError(f"the vocabulary must give [PAD] id 0 (BERT's layout), got {self.pad}")

    def encode(self, texts, max_words: int) -> tuple[np.ndarray, np.ndarray]:
        """ids [N, max_words] int32 ([CLS] words [SEP] [PAD]...) and valid [N, max_words] bool."""
        ids = np.zeros((len(texts), max_words), np.int32)
        for i, enc in enumerate(self.tokenizer.encode_batch(list(texts), add_special_tokens=False)):
            row = [self.cls, *enc.ids[:max_words - 2], self.sep]
            ids[i, :len(row)] = row
        return ids, ids != self.pad

    def decode(self, ids) -> list[str]:
        """Token ids (a generated caption, with or without [CLS]) -> text, stopping at [SEP]."""
        out = []
        for row in np.asarray(ids):
            words = []
            for t in row.tolist():
                if t == self.sep:
                    break
                if t not in (self.pad, self.cls):
                    words.append(t)
            out.append(self.tokenizer.decode(words))
        return out
