"""Data without downloads: the fixed digits split and the seeded token task."""

from __future__ import annotations

import numpy as np
import pytest

from fwstudy.errors import BadInput
from fwstudy.measure import data
from fwstudy.workloads import WORKLOADS

# Every registered workload with a real-data task: a new workload folder is covered here too.
REAL_DATA = sorted(name for name, spec in WORKLOADS.items() if spec.dataset is not None)


@pytest.mark.parametrize("name", REAL_DATA)
def test_each_workloads_real_data_task_is_fixed_and_labelled(name):
    spec = WORKLOADS[name]
    params = spec.dataset_params_for({})
    first, again = spec.dataset(params), spec.dataset(params)
    np.testing.assert_array_equal(first.x_train, again.x_train)
    np.testing.assert_array_equal(first.y_test, again.y_test)
    assert len(first.x_train) == len(first.y_train) > 0 and len(first.x_test) == len(first.y_test) > 0
    for labels in (first.y_train, first.y_test):
        assert labels.dtype == np.int64 and 0 <= labels.min() and labels.max() < first.classes


def test_digits_split_is_fixed_stratified_and_scaled():
    flat = data.digits("flat")
    assert flat.x_train.shape == (1437, 64) and flat.x_test.shape == (360, 64)
    assert flat.x_train.dtype == np.float32 and flat.y_train.dtype == np.int64
    assert 0.0 <= flat.x_train.min() and flat.x_train.max() == 1.0
    again = data.digits("flat")
    np.testing.assert_array_equal(flat.x_test, again.x_test)
    np.testing.assert_array_equal(flat.y_train, again.y_train)
    train_share = np.bincount(flat.y_train) / len(flat.y_train)
    test_share = np.bincount(flat.y_test) / len(flat.y_test)
    assert np.abs(train_share - test_share).max() < 0.01


def test_digits_images_are_channels_last():
    flat, image = data.digits("flat"), data.digits("image")
    assert image.x_train.shape == (1437, 8, 8, 1)
    np.testing.assert_array_equal(image.x_train.reshape(-1, 64), flat.x_train)
    with pytest.raises(BadInput, match="valid layouts"):
        data.digits("nchw")


def test_batches_are_seeded_and_full():
    dataset = data.digits("flat")
    first = list(dataset.batches(100, 20, seed=1))
    second = list(dataset.batches(100, 20, seed=1))
    assert all(len(y) == 100 for _, y in first)
    for (xa, ya), (xb, yb) in zip(first, second, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    with pytest.raises(BadInput, match="exceeds"):
        next(dataset.batches(5000, 1))


def test_batches_never_repeat_a_sample_within_an_epoch():
    dataset = data.Dataset(
        name="ids",
        x_train=np.arange(10, dtype=np.float32)[:, None],
        y_train=np.arange(10),
        x_test=np.zeros((0, 1), np.float32),
        y_test=np.zeros(0, np.int64),
        classes=10,
    )
    ids = [y for _, y in dataset.batches(3, 3, seed=0)]
    assert len(np.unique(np.concatenate(ids))) == 9


def test_token_labels_are_the_rule_of_the_tokens():
    tokens, labels = data.token_batch(np.random.default_rng(0), 500, 1000, 50, 10)
    assert tokens.shape == (500, 50) and tokens.dtype == np.int64
    assert 0 <= tokens.min() and tokens.max() < 1000
    np.testing.assert_array_equal(labels, data.token_rule(tokens, 1000, 10))
    assert np.bincount(labels, minlength=10).min() > 20  # roughly balanced classes


def test_token_rule_takes_the_most_frequent_bucket_lowest_on_ties():
    vocab, classes = 100, 10  # buckets of ten tokens: 0-9, 10-19, ...
    tokens = np.array([[5, 15, 15, 25, 25, 99], [1, 11, 21, 31, 41, 51]])
    np.testing.assert_array_equal(data.token_rule(tokens, vocab, classes), [1, 0])
    np.testing.assert_array_equal(data.token_buckets(np.array([0, 9, 10, 99]), vocab, classes), [0, 0, 1, 9])


def test_token_buckets_with_uneven_vocab_are_never_empty():
    vocab, classes = 13, 10
    buckets = data.token_buckets(np.arange(vocab), vocab, classes)
    assert sorted(set(buckets)) == list(range(classes))
    tokens, labels = data.token_batch(np.random.default_rng(1), 300, vocab, 8, classes)
    np.testing.assert_array_equal(labels, data.token_rule(tokens, vocab, classes))


def test_token_task_is_fixed_and_learnable_from_token_counts():
    from sklearn.linear_model import LogisticRegression

    task = data.token_task(1000, 50, 10)
    again = data.token_task(1000, 50, 10)
    np.testing.assert_array_equal(task.x_train, again.x_train)
    assert task.x_train.shape == (4096, 50) and task.x_test.shape == (1024, 50)

    def histogram(tokens):
        buckets = data.token_buckets(tokens, 1000, 10)
        return np.stack([(buckets == b).sum(axis=1) for b in range(10)], axis=1)

    model = LogisticRegression(max_iter=2000).fit(histogram(task.x_train), task.y_train)
    # Far above the 10% of chance: the label is a learnable function of what the tokens are.
    assert model.score(histogram(task.x_test), task.y_test) > 0.8


def test_token_task_rejects_a_vocab_smaller_than_the_classes():
    with pytest.raises(BadInput, match="vocab >= classes"):
        data.token_batch(np.random.default_rng(0), 2, 5, 4, 10)
