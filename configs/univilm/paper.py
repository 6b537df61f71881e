"""UniVL paper preset: HowTo100M pre-training (the official csv, caption pickle and S3D .npy features: set
data.howto_csv / howto_captions / howto_features) and YouCookII fine-tuning (data.root: the official
youcookii_* files; data.name=msrvtt with the MSR-VTT files for that benchmark), the bert-base-uncased
vocabulary (data.vocab_file). The released sizes (hidden 768, 12 heads, FFN 3072, dropout 0.1; text 12, video 6,
cross 2, decoder 3 layers; 48 words, 48 frames of 1024-d S3D at 1 per second) and settings: MIL-NCE with n_pair 3
over every middle clip and plain dot products, alignment over every clip, lr 1e-4 with the BERT branch x 0.1, 10%
warm-up, weight decay 0.01, clip 1; fine-tuning lr 3e-5 (YouCookII), margin 0.1, beam 5. Batch sizes are what one
accelerator holds (the paper: 1920 / 960 pairs by gradient accumulation); steps are the user's budget.
Validation: 10% of the training split's videos (data.val_fraction, seeded), as neither benchmark has a
validation split of its own here (YouCookII's val split is the test split, as in the official code)."""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("univilm_quick", Path(__file__).with_name("quick.py"))
_quick = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_quick)
VARIANTS = _quick.VARIANTS


def get_config():
    c = _quick.get_config()
    c.data.update({"name": "youcookii", "pretrain_videos": 1_000_000, "train_clips": 10_000, "test_clips": 3_500,
                   "max_frames": 48, "feature_dim": 1024, "max_words": 48, "vocab_size": 30522, "val_fraction": 0.1,
                   "vocab_file": "bert-base-uncased-vocab.txt"})
    c.model.update({"dim": 768, "heads": 12, "ffn": 3072, "text_layers": 12, "video_layers": 6, "cross_layers": 2,
                    "decoder_layers": 3, "dropout": 0.1})
    c.pretrain.update({"stage1_steps": 100_000, "stage2_steps": 100_000, "batch_videos": 32,
                       "align_all_clips": True, "joint_temperature": 0.0, "mil_anchors": "middle",
                       "lr": 1e-4, "text_lr_mult": 0.1})
    c.finetune.update({"retrieval_steps": 2_000, "caption_steps": 2_000, "align_steps": 2_000, "batch_size": 32,
                       "lr": 3e-5})
    c.eval.update({"beam": 5, "max_len": 47, "batch_size": 64})
    c.checkpoint_every = 2000
    c.log_every = 100
    return c
