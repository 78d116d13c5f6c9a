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
    gen: np.random.Generator, batch_size: int, vocab: int, length: int, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded token sequences (int64) and their rule labels.

    Each row gets a target bucket and a share of its tokens drawn from that bucket, the rest
    uniform over the vocabulary, so that classes are balanced; the label is then computed from
    the tokens by ``token_rule``, never taken from the target.
    """
    if vocab < classes:
        raise BadInput(f"the token task needs vocab >= classes, got vocab={vocab}, classes={classes}")
    target = gen.integers(0, classes, size=(batch_size, 1))
    low = -(-target * vocab // classes)  # first token of the target bucket (ceil division)
    high = -(-(target + 1) * vocab // classes)
    planted = low + (gen.random((batch_size, length)) * (high - low)).astype(np.int64)
    uniform = gen.integers(0, vocab, size=(batch_size, length))
    tokens = np.where(gen.random((batch_size, length)) < TOKEN_PLANTED_SHARE, planted, uniform)
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
