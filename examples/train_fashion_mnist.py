"""Fashion-MNIST with and without RandAugment + MixUp: the same CNN, trained twice.

    python examples/train_fashion_mnist.py [--data fashion_mnist.npz] [--epochs 10]
        [--limit N] [--out out]

`--data` is a Keras-layout npz (`x_train`, `y_train`, `x_test`, `y_test`, as
`keras.datasets.fashion_mnist.load_data()` returns them); without it the script
trains on kaug's built-in sample (3,000 training and 1,000 test images). Both runs
start from the same weights, see the same images in the same order and train with
categorical cross-entropy (MixUp's labels are mixed one-hot rows); the second adds
`transforms=[RandAugment(), MixUp()]` to the generator, run on each batch on the
device. Prints each run's test accuracy and time per epoch, and writes a grid of
augmented images and a JSON report (out/train_fashion_mnist.json).
"""

import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from mnist_data import grid_scale, keras_layout, parse_args  # noqa: E402
from train_mnist import EpochTimer, convnet  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402
from kaug.datasets import load_fashion_mnist_sample  # noqa: E402
from kaug.transforms import MixUp, RandAugment  # noqa: E402

CLASSES = 10


def load_fashion_mnist(path=None):
    """((x_train, y_train), (x_test, y_test)): uint8 images (N, 28, 28, 1), int labels."""
    if path:
        with np.load(path, allow_pickle=False) as data:
            arrays = [data[key] for key in ("x_train", "y_train", "x_test", "y_test")]
        print(f"Fashion-MNIST from {path}: {len(arrays[0])} training images")
    else:
        print(
            "Training on kaug's built-in Fashion-MNIST sample: 3,000 training and 1,000 test "
            "images.\nFor all 60,000: --data path/to/fashion_mnist.npz (Keras layout)."
        )
        (x_train, y_train), (x_test, y_test) = load_fashion_mnist_sample()
        arrays = [x_train, y_train, x_test, y_test]
    return keras_layout(*arrays)


def generators():
    """The two training generators: the baseline and the one with RandAugment + MixUp."""
    return {
        "baseline": ImageDataGenerator(rescale=1 / 255),
        "randaugment_mixup": ImageDataGenerator(
            rescale=1 / 255,
            transforms=[RandAugment(num_ops=2, magnitude=9), MixUp(alpha=0.2, num_classes=CLASSES)],
        ),
    }


def train(name, datagen, data, args, initial_weights):
    (x_train, y_train), (x_test, y_test) = data
    keras.utils.set_random_seed(args.seed)
    model = convnet(x_train.shape[1:])
    model.set_weights(initial_weights)
    model.compile("adam", "categorical_crossentropy", metrics=["accuracy"])
    one_hot = keras.utils.to_categorical(y_train, CLASSES)
    timer = EpochTimer()
    model.fit(
        datagen.flow(x_train, one_hot, batch_size=args.batch_size, seed=args.seed),
        epochs=args.epochs,
        callbacks=[timer],
        shuffle=False,  # the loader reshuffles every epoch itself
        verbose=1 if sys.stdout.isatty() else 2,
    )
    test = datagen.flow(x_test, keras.utils.to_categorical(y_test, CLASSES), augment=False)
    _, accuracy = model.evaluate(test, verbose=0)
    seconds = ", ".join(f"{s:.1f}" for s in timer.seconds)
    print(f"{name}: test accuracy {accuracy:.4f}; seconds per epoch: {seconds}")
    return {"accuracy": accuracy, "seconds_per_epoch": timer.seconds}


def main():
    args = parse_args(
        __doc__,
        epochs=(10, "training epochs"),
        batch_size=(128, "images per batch"),
        seed=(0, "random seed"),
        limit=(0, "train on the first LIMIT images only (0: all)"),
    )
    (x_train, y_train), test = load_fashion_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    data = ((x_train, y_train), test)

    keras.utils.set_random_seed(args.seed)
    initial_weights = convnet(x_train.shape[1:]).get_weights()
    runs = generators()
    grid = f"{args.out}/train_fashion_mnist_augmented.png"
    runs["randaugment_mixup"].preview(
        x_train, n=16, path=grid, seed=args.seed, scale=grid_scale(x_train)
    )
    results = {
        name: train(name, datagen, data, args, initial_weights) for name, datagen in runs.items()
    }
    gain = results["randaugment_mixup"]["accuracy"] - results["baseline"]["accuracy"]
    print(f"trained on {len(x_train)} images for {args.epochs} epochs; RandAugment + MixUp "
          f"changed test accuracy by {gain:+.4f}; augmented samples: {grid}")  # fmt: skip
    report = {
        "train_images": len(x_train),
        "test_images": len(test[0]),
        "epochs": args.epochs,
        "runs": results,
        "grid": grid,
    }
    with open(f"{args.out}/train_fashion_mnist.json", "w") as file:
        json.dump(report, file, indent=1)


if __name__ == "__main__":
    main()
