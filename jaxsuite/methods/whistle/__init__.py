"""Whistle (Yusuyin et al., arXiv 2406.02166): weakly phonetic supervision for multilingual CTC ASR."""
