"""Training hyper-parameters shared by both twins, so that the same step means the same math.

Adam's epsilon: Keras adds epsilon to sqrt(v) *before* the bias correction of v
(``lr_t = lr * sqrt(1 - b2**t) / (1 - b1**t)``, ``w -= lr_t * m / (sqrt(v) + eps)``), while
PyTorch adds it *after* (``w -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``),
which is Keras' formula with ``eps * sqrt(1 - b2**t)`` in place of ``eps``. The two are equal
when eps_keras = eps_torch * sqrt(1 - b2**t), a ratio that changes every step (0.03 at t=1), so
no pair of constants makes them identical except eps = 0, which divides 0 by 0 for weights that
never get a gradient (the blank border pixels of digits, embedding rows of unseen tokens).

So both frameworks get the same epsilon, chosen small enough to vanish next to sqrt(v) for
every non-zero fp32 gradient: with 1e-12 the two updates differ by at most ~3e-11 / |g|
relative (t=1, the worst step), under 1% for any gradient above 3e-9, the size of fp32
round-off in these gradients; and both are exactly 0 where g is 0. A shared 1e-8 (PyTorch's
default; Keras' is 1e-7) would not do: at t=1 Keras' 1e-8 acts like 3e-7 in PyTorch's
formula, which shrinks the first steps of every weight whose gradient is below ~1e-6 (rarely
lit pixels); measured with ``fwstudy parity --workload mlp --steps 10`` on digits, the losses
then drift 3e-4 apart, against 4e-6 with 1e-12 (cnn: 4e-5 against 2e-7). fp32 only: 1e-12
underflows in float16.
"""

LEARNING_RATE = 1e-3
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-12

# Distinct in-memory batches cycled through by the timed loop (fairness rule 4): enough to
# avoid timing one cache-resident batch, few enough to stay small next to the model.
BATCH_POOL = 4
