"""kaug/data/keras_adapter.py: class weights as Keras computes them, and what Keras reads."""

import keras
import numpy as np
import pytest
import torch
from keras.src.trainers.data_adapters.data_adapter_utils import class_weight_to_sample_weights
from keras.src.trainers.epoch_iterator import EpochIterator

from kaug import ImageDataGenerator
from kaug.data.keras_adapter import check_class_weight, class_weight_table, class_weights

WEIGHTS = {0: 0.5, 2: 3.0, 7: 1.5}


@pytest.mark.parametrize(
    "labels",
    [
        np.array([0, 2, 7, 1, 2]),  # sparse
        np.eye(8)[[0, 2, 7, 1, 2]],  # one-hot
        np.array([[0.0], [2.0], [7.0], [1.0], [2.0]]),  # a (B, 1) column
        np.array([0, 1, 1, 0]),  # binary
        np.array([-1, 9, 0]),  # classes the dict never names: weight 1
        np.array([], dtype=np.int64),  # an empty batch
    ],
    ids=["sparse", "one-hot", "column", "binary", "unnamed", "empty"],
)
def test_class_weights_are_keras_sample_weights(labels):
    expected = class_weight_to_sample_weights(labels, WEIGHTS)
    served = class_weights(torch.from_numpy(labels), class_weight_table(WEIGHTS))
    np.testing.assert_array_equal(served.numpy(), expected)


def test_class_weight_checks():
    assert check_class_weight({np.int64(1): np.float32(2)}) == {1: 2.0}
    for bad in ({}, {-1: 1.0}, {True: 1.0}, {0: "a"}, {0: float("inf")}, (1.0,)):
        with pytest.raises(ValueError, match="class_weight"):
            check_class_weight(bad)


def test_keras_reads_one_epoch_of_tuples_with_the_class_weights(mnist):
    x, y = mnist["x_train"][:20, :, :, None], mnist["y_train"][:20]
    loader = ImageDataGenerator(device="cpu").flow(x, y, batch_size=8, shuffle=False)
    iterator = EpochIterator(loader, class_weight={int(y[0]): 4.0})
    assert iterator.num_batches == len(loader) == 3
    batches = list(loader.get_numpy_iterator())
    assert [len(b[0]) for b in batches] == [8, 8, 4] and all(len(b) == 3 for b in batches)
    weights = np.concatenate([b[2] for b in batches])
    np.testing.assert_array_equal(weights, np.where(y == y[0], 4.0, 1.0))
    images_only = ImageDataGenerator(device="cpu").flow(x, batch_size=8)
    EpochIterator(images_only)  # a new reader: no class weights, one epoch
    assert all(isinstance(b, tuple) and len(b) == 1 for b in images_only.get_numpy_iterator())
    assert isinstance(loader, keras.src.trainers.data_adapters.data_adapter.DataAdapter)
