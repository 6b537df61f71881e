"""Triple-GAN losses against hand-computed values and their gradients' directions."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxsuite.methods.pate_triplegan import losses


def test_bce_values():
    assert float(losses.bce(jnp.zeros(4), 1.0)) == pytest.approx(np.log(2), rel=1e-6)
    assert float(losses.bce(jnp.array([10.0]), 1.0)) == pytest.approx(np.log1p(np.exp(-10.0)), rel=1e-4)


def test_discriminator_and_generator_losses():
    zero = jnp.zeros(3)
    assert float(losses.discriminator_loss(zero, zero, zero)) == pytest.approx(2 * np.log(2), rel=1e-6)
    # a D that is right everywhere has a small loss; G's loss is large against it
    d = losses.discriminator_loss(jnp.full(3, 8.0), jnp.full(3, -8.0), jnp.full(3, -8.0))
    assert float(d) < 1e-3 and float(losses.generator_loss(jnp.full(3, -8.0))) > 7.0


def test_classifier_adversarial_gradient_flows_through_confidence_only():
    d_cla = jnp.array([-2.0, 1.0])
    y = jnp.array([0, 1])

    def loss(c_logits_u, d):
        total, _ = losses.classifier_loss(d, c_logits_u, jnp.zeros((2, 3)), y, jnp.zeros((2, 3)), y)
        return total

    g_c, g_d = jax.grad(loss, argnums=(0, 1))(jnp.array([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]), d_cla)
    assert np.allclose(np.asarray(g_d), 0.0)  # D is not trained by C's loss
    # pairs D rejects (logit -2) push C's confidence down: the top logit's gradient is positive
    assert float(g_c[0, 0]) > 0


def test_student_loss_keeps_only_answers_agreeing_with_the_generators_label():
    logits = jnp.log(jnp.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]]))
    answers, y_gen = jnp.array([0, 2, 2]), jnp.array([0, 1, 2])
    ce = -np.log([0.7, 0.1, 0.6])
    np.testing.assert_allclose(float(losses.student_loss(logits, answers, y_gen)), ce.mean(), rtol=1e-5)
    np.testing.assert_allclose(float(losses.student_loss(logits, answers, y_gen, "agreeing")), (ce[0] + ce[2]) / 2,
                               rtol=1e-5)
    # no answer agrees: the term is zero, not 0 / 0
    assert float(losses.student_loss(logits, jnp.array([1, 0, 0]), y_gen, "agreeing")) == 0.0
    with pytest.raises(ValueError, match="keep"):
        losses.student_loss(logits, answers, y_gen, "some")
