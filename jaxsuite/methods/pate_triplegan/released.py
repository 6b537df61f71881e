"""Everything a private run of this method writes outside its checkpoints, listed in one place: the step metrics
(metrics.jsonl, TensorBoard) and the run's results (results.json). Each entry says why releasing it costs no
privacy beyond the planned epsilon: it is noised by a mechanism the budget pays for, a post-processing of such
an output, or independent of the private data. ``train.train_step`` refuses, at trace time, a private step whose
metrics leave ``STEP_METRICS``, and ``experiment.run`` a private result that leaves ``RESULT_KEYS``.

Not here, by design: the teachers' losses (a noise-free function of their shards), the realised sizes of the
Poisson batches, and the counts of examples whose clipping norm was not finite or was rerouted
(``dpsgd.clipped_grad_sum(return_stats=True)``): each is a function of the private data with no noise. The
checkpoints hold the private state a resumed run needs (teachers included); they are the run's own, never
results."""
from __future__ import annotations

STEP_METRICS = {
    "g_loss": "G's loss against D on generated pairs: post-processing of D (DP-SGD, or GNMax-taught) and of G",
    "c_public_loss": "C's terms on generated images and replayed GNMax answers: post-processing of C and answers",
    "gnmax_answers": "the number of GNMax answers so far: a function of the step count",
    "replay_real": "pate_gan: the share of 'real' among replayed GNMax answers: post-processing of the answers",
    "d_loss": "pate_gan: the student D's loss on replayed answers about generated pairs: post-processing",
}

RESULT_KEYS = {
    "cas_accuracy": "a CNN trained on G's samples, scored on the held-out test set: post-processing of G",
    "classifier_accuracy": "C (DP-SGD + GNMax answers) on the held-out test set: post-processing of C",
    "epsilon_spent": "the planned run's epsilon: data-independent", "epsilon_rdp": "(the same, RDP accountant)",
    "epsilon_pld": "(the same, PLD accountant)", "extra/epsilon_spent": "(the same, for results.json's extra)",
    "delta": "the planned delta: data-independent", "steps": "the planned iterations: data-independent",
    "gnmax_answers": "planned answers: data-independent", "dpsgd_noise_factor": "no_pate's planned noise factor",
    "train_seconds": "wall time of fixed-shape steps (padded Poisson batches): the shapes do not depend on the data",
}


def check(keys, allowed: dict, what: str) -> None:
    """Raise if a private run would write a key that ``allowed`` does not list."""
    extra = sorted(set(keys) - set(allowed))
    if extra:
        raise RuntimeError(f"a private run would write {what} {extra}, which released.py does not list as safe to "
                           f"release")
