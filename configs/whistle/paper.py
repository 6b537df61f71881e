"""Whistle paper preset: Whistle-S on CV-Lang10 (Common Voice 11.0 on disk), crosslingual to Polish.

Model and training as CAT's egs/cv-lang10 Whistle-S config: Conformer with VGG2L subsampling, 14 blocks, hdim 512,
4 heads, conv kernel 15, dropout 0.1; 80-dim fbank; SpecAugment 2 frequency masks (35 %) and 10 time masks (5 %);
Adam (0.9, 0.98), weight decay 1e-6, Noam with 20k warm-up steps and peak factor 1 at d_model 512, i.e. a peak lr
of 512^-0.5 * 20000^-0.5 = 3.125e-4; batch 640 utterances. Fine-tuning: lr 3e-5 (the paper's), output layer
mapped to the Polish phones (37 in the paper), the 1-hour subset (here: the first ``unseen_train`` utterances).
WER: CTC beam 16 with the lexicon and a word LM (bigram here; the paper's 4-gram WFST).

Not run here (about 4000 hours of audio and several GPU-days); it needs the Common Voice release unpacked under
$JAXSUITE_DATA/commonvoice/<locale>/ (see jaxsuite/data/commonvoice.py).
"""
from ml_collections import ConfigDict

from jaxsuite.core.config import load_config


def get_config() -> ConfigDict:
    c = load_config("whistle", "quick")
    c.unlock()
    c.dataset = "commonvoice"
    c.seen_languages = ("en", "es", "fr", "it", "ky", "nl", "ru", "sv", "tr", "tt")
    c.unseen_languages = ("pl", "id")
    # 0 = the whole split; 1 h of Polish is about 700 utterances of CV's ~5 s
    c.data.update({"root": "", "seen_train": 0, "seen_test": 0, "unseen_train": 700, "unseen_test": 0,
                   "max_frames": 1200, "max_label_len": 320, "bpe_vocab": 5000})
    c.model = ConfigDict({"in_dim": 80, "dim": 512, "num_blocks": 14, "heads": 4, "kernel": 15, "ff_mult": 4,
                          "dropout": 0.1, "input_dropout": 0.1, "vgg_channels": (64, 128),
                          "compute_dtype": "bfloat16"})
    c.spec_augment = ConfigDict({"freq_masks": 2, "freq_width": 0.35, "time_masks": 10, "time_width": 0.05})
    # wav2vec 2.0 BASE's pre-training settings (Baevski et al. 2020, Sec. 4.2)
    c.ssl = ConfigDict({"groups": 2, "entries": 320, "code_dim": 256, "final_dim": 256, "mask_prob": 0.065,
                        "mask_span": 10, "negatives": 100, "temperature": 0.1, "diversity_weight": 0.1,
                        "feature_penalty": 10.0, "tau_start": 2.0, "tau_end": 0.5, "tau_decay": 0.999995})
    c.pretrain.update({"steps": 200_000, "batch_size": 640})
    c.pretrain.optim.update({"schedule": "noam", "lr": 512 ** -0.5 * 20_000 ** -0.5, "warmup": 20_000})
    c.finetune.update({"steps": 5_000, "batch_size": 64})
    c.finetune.optim.update({"schedule": "constant", "lr": 3e-5, "warmup": 500})
    c.decode = ConfigDict({"beam": 16, "lm_weight": 1.0, "word_bonus": 0.0})
    c.eval_fleurs = True
    c.eval_batch_size = 64
    c.checkpoint_every = 2000
    c.log_every = 100
    return c
