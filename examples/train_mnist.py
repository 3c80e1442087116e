"""Train a small Keras CNN on MNIST with kaug augmentation, through model.fit.

    python examples/train_mnist.py [--data mnist.npz] [--epochs 5] [--limit N] [--out out]

Prints the test accuracy and the time per epoch, and writes a grid of augmented
training digits and a JSON report (out/train_mnist.json). Without a local MNIST
it trains on kaug's built-in sample of real digits (10,000 training, 2,000 test);
see examples/mnist_data.py.
"""

import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
from mnist_data import grid_scale, load_mnist, parse_args  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402


class EpochTimer(keras.callbacks.Callback):
    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def convnet(input_shape):
    """Keras's "simple MNIST convnet"."""
    return keras.Sequential(
        [
            keras.Input(input_shape),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )


def main():
    args = parse_args(
        __doc__,
        epochs=(5, "training epochs"),
        batch_size=(64, "images per batch"),
        seed=(0, "random seed"),
        limit=(0, "train on the first LIMIT images only (0: all)"),
    )
    keras.utils.set_random_seed(args.seed)
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]

    datagen = ImageDataGenerator(
        rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, zoom_range=0.1,
        rescale=1 / 255,
    )  # fmt: skip
    grid = f"{args.out}/train_mnist_augmented.png"
    datagen.preview(x_train, n=16, path=grid, scale=grid_scale(x_train))  # as `kaug preview`

    model = convnet(x_train.shape[1:])
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    timer = EpochTimer()
    model.fit(
        datagen.flow(x_train, y_train, batch_size=args.batch_size, seed=args.seed),
        epochs=args.epochs,
        validation_data=datagen.flow(x_test, y_test, batch_size=512, augment=False),
        callbacks=[timer],
        shuffle=False,  # the loader reshuffles every epoch itself
        verbose=1 if sys.stdout.isatty() else 2,  # a live bar, or a line per epoch in logs
    )
    _, accuracy = model.evaluate(datagen.flow(x_test, y_test, augment=False), verbose=0)
    per_epoch = ", ".join(f"{s:.1f}" for s in timer.seconds)
    print(f"trained on {len(x_train)} images ({datagen.device}); test accuracy {accuracy:.4f}")
    print(f"seconds per epoch: {per_epoch}; augmented samples: {grid}")
    report = {
        "train_images": len(x_train),
        "test_images": len(x_test),
        "accuracy": accuracy,
        "seconds_per_epoch": timer.seconds,
        "device": str(datagen.device),
        "grid": grid,
    }
    with open(f"{args.out}/train_mnist.json", "w") as file:
        json.dump(report, file, indent=1)


if __name__ == "__main__":
    main()
