"""End to end: a Keras CNN learns MNIST from `model.fit(datagen.flow(...))`."""

import keras
import numpy as np

from kaug import ImageDataGenerator
from tests.helpers import small_cnn


def test_cnn_learns_mnist_through_flow(mnist):
    """10,000 real digits, rotation and shift augmentation, 3 epochs.

    On this setup (benchmarks/training_parity.py, 3 seeds) Keras's legacy
    generator reached 0.9437 test accuracy (0.9400-0.9490) and kaug 0.9430
    (0.9370-0.9465). 0.93 proves learning (chance is 0.10) with room for seeds.
    """
    keras.utils.set_random_seed(0)
    x, y = mnist["x_train"][:10000, :, :, None], mnist["y_train"][:10000]
    x_test, y_test = mnist["x_test"][:2000, :, :, None], mnist["y_test"][:2000]
    datagen = ImageDataGenerator(
        rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, rescale=1 / 255
    )
    model = small_cnn(filters=(16, 32))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(
        datagen.flow(x, y, batch_size=64, seed=0),
        epochs=3,
        validation_data=datagen.flow(x_test, y_test, batch_size=256, augment=False),
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    _, accuracy = model.evaluate(datagen.flow(x_test, y_test, augment=False), verbose=0)
    assert accuracy >= 0.93


def test_fit_accepts_sample_weights_and_image_only_batches(mnist):
    keras.utils.set_random_seed(1)
    x, y = mnist["x_train"][:256, :, :, None], mnist["y_train"][:256]
    datagen = ImageDataGenerator(horizontal_flip=True, rescale=1 / 255)
    model = small_cnn(filters=(16, 32))
    model.compile("adam", "sparse_categorical_crossentropy")
    weights = np.where(y == 0, 5.0, 1.0).astype("float32")
    model.fit(datagen.flow(x, y, sample_weight=weights, batch_size=64), epochs=1, verbose=0)
    predictions = model.predict(datagen.flow(x, batch_size=64, shuffle=False), verbose=0)
    assert predictions.shape == (256, 10)
