"""Does training through kaug reach what Keras's own generator reaches?

The setup of tests/test_training.py (10,000 real MNIST digits, rotation 15,
shifts 0.1, rescale 1/255, a small CNN, batch 64, 3 epochs), trained through
kaug's `flow` and through Keras's legacy `ImageDataGenerator.flow`, side by side,
for a few seeds. Prints test accuracy (2,000 test digits) and seconds per epoch.

    python benchmarks/training_parity.py [--data ../shared/data/mnist.npz] [--seeds 3]
"""

import argparse
import os
import pathlib
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402

ARGS = dict(rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, rescale=1 / 255)
DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"


def small_cnn():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def train(make_flow, x, y, x_test, y_test, seed, epochs=3):
    keras.utils.set_random_seed(seed)
    model = small_cnn()
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(make_flow(x, y), epochs=epochs, verbose=0)
    seconds = (time.perf_counter() - start) / epochs
    _, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    return accuracy, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    with np.load(args.data) as data:
        x, y = data["x_train"][:10000, :, :, None], data["y_train"][:10000]
        x_test, y_test = data["x_test"][:2000, :, :, None], data["y_test"][:2000]
    kaug, legacy = ImageDataGenerator(**ARGS), KerasGenerator(**ARGS)
    runs = {
        "kaug": lambda a, b: kaug.flow(a, b, batch_size=64),
        "keras legacy": lambda a, b: legacy.flow(a.astype("float32"), b, batch_size=64),
    }
    print(f"device {kaug.device}; torch backend; {args.seeds} seeds")
    for name, make_flow in runs.items():
        results = [train(make_flow, x, y, x_test, y_test, seed) for seed in range(args.seeds)]
        accuracies = [a for a, _ in results]
        print(
            f"{name:13s} test accuracy {statistics.mean(accuracies):.4f} "
            f"(min {min(accuracies):.4f}, max {max(accuracies):.4f}); "
            f"{statistics.median(s for _, s in results):.1f} s per epoch"
        )


if __name__ == "__main__":
    main()
