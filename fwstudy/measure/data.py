"""Data for the study, all without downloads, all as NumPy arrays that neither framework owns.

Two kinds of data serve two purposes. Throughput only needs tensors of the right shape, so
every workload draws seeded synthetic batches of its default shape (``spec.synthetic_batch``).
Accuracy and convergence need a task whose labels mean something:

* scikit-learn's bundled ``digits`` (8×8 grey images, 1,797 samples, shipped inside the wheel)
  with one fixed, stratified train/test split, for ``mlp`` (flat, 64 features) and ``cnn``
  (8×8×1 images, channels last);
* a seeded *token task* for the sequence models, whose label is a rule of the tokens (the most
  frequent token bucket), so that an LSTM or a transformer that learns it is measurably right.

Images are channels-last (NHWC) everywhere outside the models: one framework-neutral layout;
the PyTorch CNN permutes to NCHW inside its own ``forward``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from fwstudy.errors import BadInput, choices

DIGITS_TEST_FRACTION = 0.2
DIGITS_SPLIT_SEED = 0
DIGITS_LAYOUTS = ("flat", "image")

# Token task: the share of a sample's tokens planted in its target bucket. High enough that the
# most frequent bucket is clear (the label rule rarely needs its tie-break), low enough that the
# model must look at most of the sequence to be sure.
TOKEN_PLANTED_SHARE = 0.3


@dataclass(frozen=True)
class Dataset:
    """A fixed train/test split; ``x`` float32 or int64, ``y`` int64 class labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: int

    def batches(self, batch_size: int, steps: int, seed: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """``steps`` training batches in a seeded order, the same for both frameworks.

        Epochs are seeded permutations of the training set; a batch never spans two epochs,
        so every batch has exactly ``batch_size`` samples.
        """
        n = len(self.y_train)
        if batch_size > n:
            raise BadInput(f"batch size {batch_size} exceeds the {n} training samples of {self.name}")
        gen = np.random.default_rng(seed)
        order = gen.permutation(n)
        position = 0
        for _ in range(steps):
            if position + batch_size > n:
                order, position = gen.permutation(n), 0
            index = order[position : position + batch_size]
            position += batch_size
            yield self.x_train[index], self.y_train[index]


@functools.cache
def _digits_arrays() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.data / 16.0).astype(np.float32)  # pixel values are 0..16
    y = bunch.target.astype(np.int64)
    return tuple(
        train_test_split(
            x, y, test_size=DIGITS_TEST_FRACTION, random_state=DIGITS_SPLIT_SEED, stratify=y
        )
    )


def digits(layout: str = "flat") -> Dataset:
    """The bundled digits, scaled to [0, 1]: ``flat`` (n, 64) or ``image`` (n, 8, 8, 1) NHWC."""
    if layout not in DIGITS_LAYOUTS:
        raise BadInput(f"unknown digits layout {layout!r}; valid layouts: {choices(DIGITS_LAYOUTS)}")
    x_train, x_test, y_train, y_test = _digits_arrays()
    if layout == "image":
        x_train, x_test = x_train.reshape(-1, 8, 8, 1), x_test.reshape(-1, 8, 8, 1)
    return Dataset(
        name=f"digits-{layout}",
        x_train=x_train.copy(),
        y_train=y_train.copy(),
        x_test=x_test.copy(),
        y_test=y_test.copy(),
        classes=10,
    )


def token_buckets(tokens: np.ndarray, vocab: int, classes: int) -> np.ndarray:
    """Bucket of each token: the vocabulary cut into ``classes`` contiguous, near-equal ranges."""
    return (tokens.astype(np.int64) * classes) // vocab


def token_rule(tokens: np.ndarray, vocab: int, classes: int) -> np.ndarray:
    """The label of each row: its most frequent bucket, the lowest bucket on a tie.

    A rule of the whole sequence, not of one position: a model has to aggregate over all the
    tokens (a recurrent state or attention plus pooling), which is what both sequence
    workloads are for.
    """
    buckets = token_buckets(tokens, vocab, classes)
    counts = np.zeros((tokens.shape[0], classes), dtype=np.int64)
    np.add.at(counts, (np.arange(tokens.shape[0])[:, None], buckets), 1)
    return counts.argmax(axis=1).astype(np.int64)


def token_batch(
    gen: np.random.Generator, batch_size: int, vocab: int, length: int, classes: int,
    planted_share: float = TOKEN_PLANTED_SHARE,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded token sequences (int64) and their rule labels.

    Each row gets a target bucket and a share (``planted_share``) of its tokens drawn from that
    bucket, the rest uniform over the vocabulary, so that classes are balanced; the label is
    then computed from the tokens by ``token_rule``, never taken from the target.
    """
    if vocab < classes:
        raise BadInput(f"the token task needs vocab >= classes, got vocab={vocab}, classes={classes}")
    target = gen.integers(0, classes, size=(batch_size, 1))
    low = -(-target * vocab // classes)  # first token of the target bucket (ceil division)
    high = -(-(target + 1) * vocab // classes)
    planted = low + (gen.random((batch_size, length)) * (high - low)).astype(np.int64)
    uniform = gen.integers(0, vocab, size=(batch_size, length))
    tokens = np.where(gen.random((batch_size, length)) < planted_share, planted, uniform)
    tokens = tokens.astype(np.int64)
    return tokens, token_rule(tokens, vocab, classes)


def token_task(
    vocab: int,
    length: int,
    classes: int = 10,
    n_train: int = 4096,
    n_test: int = 1024,
    seed: int = 0,
) -> Dataset:
    """A fixed split of the token task: the real-data stand-in for ``lstm`` and ``transformer``."""
    gen = np.random.default_rng(seed)
    x_train, y_train = token_batch(gen, n_train, vocab, length, classes)
    x_test, y_test = token_batch(gen, n_test, vocab, length, classes)
    return Dataset(
        name=f"tokens-v{vocab}-l{length}",
        x_train=x_train,
        y_train=y_train,
        x_test=x_test,
        y_test=y_test,
        classes=classes,
    )


# --- harder variants for convergence (F8) and robustness (F10) ----------------------------------
# Plain digits saturate in a few seconds, so a time-to-accuracy on them would time start-up
# overhead. These variants take longer to learn and are still made here, from a seed, with
# nothing downloaded. Adding them changes none of the functions above (the parity gate and
# every other figure read those).

SHIFTED_SIDE = 28  # the MLP's 784 inputs and the CNN's default 28x28x1 image
SHIFTED_UPSAMPLE = 3  # 8x8 -> 24x24 by bilinear interpolation, placed on a 28x28 canvas
SHIFTED_MAX_SHIFT = 2  # pixels, each axis: the 24x24 digit moves anywhere inside the canvas
SHIFTED_NOISE = 0.25  # standard deviation of the Gaussian pixel noise, then clipped to [0, 1]
SHIFTED_SEED = 0

# The harder token task: fewer planted tokens (of 50, the winning bucket expects 10.4 against
# 4.4 for each other bucket, where ``token_task``'s 0.3 gives 18.5 against 3.5) and twice the
# samples of ``token_task``.
HARD_TOKEN_PLANTED_SHARE = 0.12
HARD_TOKEN_TRAIN = 8192
HARD_TOKEN_TEST = 2048


def _shifted(x: np.ndarray, gen: np.random.Generator) -> np.ndarray:
    """(n, 64) digits in [0, 1] -> (n, 28, 28) upsampled, randomly shifted, noisy, in [0, 1]."""
    from scipy.ndimage import zoom

    n = x.shape[0]
    big = zoom(x.reshape(n, 8, 8), (1, SHIFTED_UPSAMPLE, SHIFTED_UPSAMPLE), order=1)
    big = np.clip(big, 0.0, 1.0)
    side, inner = SHIFTED_SIDE, 8 * SHIFTED_UPSAMPLE
    centre = (side - inner) // 2
    shifts = gen.integers(-SHIFTED_MAX_SHIFT, SHIFTED_MAX_SHIFT + 1, size=(n, 2))
    out = np.zeros((n, side, side), dtype=np.float32)
    for i, (dy, dx) in enumerate(shifts):
        top, left = centre + dy, centre + dx
        out[i, top : top + inner, left : left + inner] = big[i]
    out += gen.normal(0.0, SHIFTED_NOISE, size=out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


@functools.cache
def _shifted_arrays(seed: int) -> tuple[np.ndarray, ...]:
    x_train, x_test, y_train, y_test = _digits_arrays()
    gen = np.random.default_rng([SHIFTED_SEED, seed])
    return _shifted(x_train, gen), _shifted(x_test, gen), y_train, y_test


def digits_shifted(layout: str = "flat", seed: int = SHIFTED_SEED) -> Dataset:
    """The digits' fixed split made harder: upsampled to 28x28, shifted by up to
    ``SHIFTED_MAX_SHIFT`` pixels and noised, from ``seed``: ``flat`` (n, 784) or ``image``
    (n, 28, 28, 1) NHWC. The same seed always gives the same arrays (both frameworks, every run)."""
    if layout not in DIGITS_LAYOUTS:
        raise BadInput(f"unknown digits layout {layout!r}; valid layouts: {choices(DIGITS_LAYOUTS)}")
    x_train, x_test, y_train, y_test = _shifted_arrays(int(seed))
    shape = (-1, SHIFTED_SIDE * SHIFTED_SIDE) if layout == "flat" else (-1, SHIFTED_SIDE, SHIFTED_SIDE, 1)
    return Dataset(
        name=f"digits28-shifted-{layout}-s{seed}",
        x_train=x_train.reshape(shape).copy(),
        y_train=y_train.copy(),
        x_test=x_test.reshape(shape).copy(),
        y_test=y_test.copy(),
        classes=10,
    )


def token_task_hard(vocab: int, length: int, classes: int = 10, seed: int = 0) -> Dataset:
    """The token task with a smaller planted share and more samples (``HARD_TOKEN_*``): the
    sequence models need many epochs to learn it, so time-to-accuracy measures learning."""
    gen = np.random.default_rng([seed, 1])
    x_train, y_train = token_batch(gen, HARD_TOKEN_TRAIN, vocab, length, classes, HARD_TOKEN_PLANTED_SHARE)
    x_test, y_test = token_batch(gen, HARD_TOKEN_TEST, vocab, length, classes, HARD_TOKEN_PLANTED_SHARE)
    return Dataset(
        name=f"tokens-hard-v{vocab}-l{length}",
        x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, classes=classes,
    )
