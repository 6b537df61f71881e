"""eSpeak NG from the ``espeakng-loader`` wheel: speech synthesis (ctypes) and IPA G2P (phonemizer).

The wheel ships ``libespeak-ng.so`` and its voice data, so nothing is installed outside the virtual
environment. Synthesis calls the library's synchronous API (``espeak_Synth`` with a sample callback);
G2P goes through ``phonemizer``'s espeak backend, pointed at the same library. The library keeps global
state (voice, rate, pitch), so synthesis is serialised by a lock.
"""
from __future__ import annotations

import ctypes
import functools
import logging
import threading

import numpy as np

from jaxsuite.core.errors import UserError

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
PARAM_RATE, PARAM_VOLUME, PARAM_PITCH, PARAM_RANGE = 1, 2, 3, 4
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()


def _loader():
    try:
        import espeakng_loader
    except ImportError as err:  # pragma: no cover - a core dependency
        raise UserError("eSpeak NG is missing: pip install espeakng-loader phonemizer") from err
    return espeakng_loader


class Synthesizer:
    """``synthesize(text, voice, rate, pitch) -> float32 waveform`` at :attr:`sample_rate` (22050 Hz)."""

    def __init__(self):
        loader = _loader()
        self._lib = ctypes.CDLL(loader.get_library_path())
        lib = self._lib
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        self.sample_rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0,
                                                 loader.get_data_path().encode(), 0)
        if self.sample_rate <= 0:
            raise UserError(f"eSpeak NG failed to initialise from {loader.get_data_path()}")
        self._chunks: list[np.ndarray] = []

        def on_samples(wav, n, _events):
            if n > 0:
                self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
            return 0

        self._callback = _CALLBACK(on_samples)  # kept alive on the instance
        lib.espeak_SetSynthCallback(self._callback)

    def synthesize(self, text: str, voice: str, *, rate: int = 175, pitch: int = 50, pitch_range: int = 50,
                   seed: int = 0) -> np.ndarray:
        """Speak ``text`` with eSpeak voice ``voice`` (e.g. ``"pl"``, ``"en-us+f3"``); words per minute
        ``rate`` (80-450), ``pitch`` and ``pitch_range`` in 0-100. eSpeak's random source is seeded with ``seed``,
        but its wave generator keeps state between calls (the pitch flutter's phase, echo and AGC buffers), so
        the samples depend on what the process synthesised before: reproducible sets are made in a fresh
        process (:func:`jaxsuite.data.synth_lang10.load` does)."""
        with _LOCK:
            base, plus, variant = voice.partition("+")
            names = [voice] + ([base.split("-")[0] + plus + variant] if "-" in base else [])  # fr-fr -> fr
            if all(self._lib.espeak_SetVoiceByName(name.encode()) != 0 for name in names):
                raise UserError(f"eSpeak NG has no voice {voice!r}")
            for param, value in ((PARAM_RATE, rate), (PARAM_PITCH, pitch), (PARAM_RANGE, pitch_range)):
                self._lib.espeak_SetParameter(param, int(value), 0)
            if hasattr(self._lib, "espeak_ng_SetRandSeed"):
                self._lib.espeak_ng_SetRandSeed(ctypes.c_long(seed))
            self._chunks = []
            data = text.encode("utf-8") + b"\0"
            buf = ctypes.create_string_buffer(data)
            err = self._lib.espeak_Synth(buf, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None)
            self._lib.espeak_Synchronize()
            if err != 0:
                raise UserError(f"eSpeak NG could not synthesise {text!r} with voice {voice!r} (error {err})")
            chunks, self._chunks = self._chunks, []
        wav = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        return wav.astype(np.float32) / 32768.0


@functools.lru_cache(maxsize=1)
def synthesizer() -> Synthesizer:
    return Synthesizer()


@functools.lru_cache(maxsize=None)
def _backend(language: str):
    from phonemizer.backend import EspeakBackend
    from phonemizer.backend.espeak.wrapper import EspeakWrapper

    loader = _loader()
    EspeakWrapper.set_library(loader.get_library_path())
    EspeakWrapper.set_data_path(loader.get_data_path())
    try:
        quiet = logging.getLogger("jaxsuite.g2p")  # phonemizer warns per batch about switches it removed
        quiet.setLevel(logging.ERROR)
        return EspeakBackend(language, preserve_punctuation=False, with_stress=False,
                             language_switch="remove-flags", logger=quiet)
    except RuntimeError as err:
        raise UserError(f"eSpeak NG G2P: {err}") from err


def g2p(texts: list[str], language: str) -> list[list[list[str]]]:
    """Raw eSpeak IPA of each text: a list of words, each a list of phones (not yet cleaned)."""
    from phonemizer.separator import Separator

    out = _backend(language).phonemize(list(texts), separator=Separator(phone=" ", word="|"), strip=True,
                                       njobs=1)
    return [[w.split() for w in line.split("|") if w.strip()] for line in out]
