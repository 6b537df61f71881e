"""80-dim log-mel filterbanks (numpy, Kaldi-style framing) and SpecAugment (jnp, explicit keys).

Whistle (CAT, egs/cv-lang10) trains on 80-dim fbank at 16 kHz with 25 ms windows and a 10 ms shift, and
SpecAugment with 2 frequency masks of up to 35 % of the bins and 10 time masks of up to 5 % of the frames.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from scipy import signal

SAMPLE_RATE = 16000


def resample(wav: np.ndarray, rate: int, target: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling to ``target`` Hz."""
    if rate == target:
        return np.asarray(wav, np.float32)
    g = np.gcd(int(rate), int(target))
    return signal.resample_poly(wav, target // g, rate // g).astype(np.float32)


def _mel(f):
    return 1127.0 * np.log1p(np.asarray(f) / 700.0)


@functools.lru_cache(maxsize=8)
def mel_filterbank(num_bins: int = 80, n_fft: int = 512, rate: int = SAMPLE_RATE, low: float = 20.0,
                   high: float | None = None) -> np.ndarray:
    """[n_fft // 2 + 1, num_bins] triangular filters equally spaced on the mel scale (Kaldi's)."""
    high = rate / 2 if high is None else high
    edges = np.linspace(_mel(low), _mel(high), num_bins + 2)
    freqs = _mel(np.arange(n_fft // 2 + 1) * rate / n_fft)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up = (freqs[None] - left) / (centre - left)
    down = (right - freqs[None]) / (right - centre)
    return np.maximum(0.0, np.minimum(up, down)).T.astype(np.float32)


def fbank(wav: np.ndarray, *, num_bins: int = 80, rate: int = SAMPLE_RATE, frame_ms: float = 25.0,
          shift_ms: float = 10.0, preemphasis: float = 0.97, normalize: bool = True) -> np.ndarray:
    """[frames, num_bins] log-mel energies of a mono waveform (per-utterance mean/variance normalised)."""
    wav = np.asarray(wav, np.float64)
    length, shift = int(rate * frame_ms / 1000), int(rate * shift_ms / 1000)
    if len(wav) < length:
        wav = np.pad(wav, (0, length - len(wav)))
    n = 1 + (len(wav) - length) // shift
    frames = np.lib.stride_tricks.sliding_window_view(wav, length)[::shift][:n].copy()
    frames -= frames.mean(axis=1, keepdims=True)  # DC removal per frame
    frames[:, 1:] -= preemphasis * frames[:, :-1]
    frames[:, 0] *= 1 - preemphasis
    frames *= np.hanning(length + 2)[1:-1] ** 0.85  # Kaldi's povey window
    n_fft = 1 << (length - 1).bit_length()
    power = np.abs(np.fft.rfft(frames, n_fft)) ** 2
    feats = np.log(np.maximum(power @ mel_filterbank(num_bins, n_fft, rate), 1e-10))
    if normalize:
        feats = (feats - feats.mean(0)) / (feats.std(0) + 1e-5)
    return feats.astype(np.float32)


def spec_augment(key: jax.Array, feats: jax.Array, lengths: jax.Array, *, freq_masks: int = 2,
                 freq_width: float = 0.35, time_masks: int = 10, time_width: float = 0.05) -> jax.Array:
    """SpecAugment (Park et al. 2019) on a padded batch ``feats`` [B, T, F]: ``freq_masks`` bands of up to
    ``freq_width`` * F bins and ``time_masks`` spans of up to ``time_width`` * length frames, set to 0
    (the normalised mean). Masks are drawn per utterance within its own length."""
    b, t, f = feats.shape
    kf_w, kf_s, kt_w, kt_s = jax.random.split(key, 4)

    def masks(kw, ks, count, extent, width):  # -> [B, count, 2] (start, end)
        w = jnp.floor(jax.random.uniform(kw, (b, count)) * (width * extent[:, None] + 1))
        s = jnp.floor(jax.random.uniform(ks, (b, count)) * jnp.maximum(extent[:, None] - w, 1.0))
        return s, s + w

    fs, fe = masks(kf_w, kf_s, freq_masks, jnp.full((b,), float(f)), freq_width)
    ts, te = masks(kt_w, kt_s, time_masks, lengths.astype(jnp.float32), time_width)
    bins, frames = jnp.arange(f, dtype=jnp.float32), jnp.arange(t, dtype=jnp.float32)
    f_hit = ((bins[None, None] >= fs[..., None]) & (bins[None, None] < fe[..., None])).any(1)  # [B, F]
    t_hit = ((frames[None, None] >= ts[..., None]) & (frames[None, None] < te[..., None])).any(1)  # [B, T]
    return jnp.where(f_hit[:, None, :] | t_hit[:, :, None], 0.0, feats)
