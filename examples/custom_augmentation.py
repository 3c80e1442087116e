"""Erosion and salt-and-pepper augmentation on MNIST: does it buy robustness?

The classic recipe patched Keras's image.py to erode half the digits with a 2x2
square and to set 50 pixels to white and 50 to black in half of them. With kaug it
is `ImageDataGenerator(erosion=True)` and `ImageDataGenerator(salt_pepper=True)`.
This trains the same CNN three ways (no extras, erosion, salt-and-pepper) and
scores each on clean, noisy and eroded test digits; it also writes before/after
grids of both augmentations.

    python examples/custom_augmentation.py [--data mnist.npz] [--limit 20000] [--epochs 3]
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from mnist_data import load_mnist, parse_args  # noqa: E402
from train_mnist import convnet  # noqa: E402

from kaug import ImageDataGenerator, data  # noqa: E402

EXTRAS = {"no extras": {}, "erosion": {"erosion": True}, "salt-and-pepper": {"salt_pepper": True}}


def before_after(images, augmented, path):
    """Originals on the top row, their augmented versions below."""
    rows = np.concatenate([images, augmented]).clip(0, 255).astype("uint8")
    data.io.save_image(data.io.image_grid(rows, columns=len(images)), path)


def main():
    args = parse_args(
        __doc__,
        epochs=(3, "training epochs per model"),
        limit=(20000, "training images (0: all)"),
        seed=(0, "random seed"),
    )
    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    test_sets = {
        "clean": x_test,
        "noisy": ImageDataGenerator(salt_pepper=1.0).augment(x_test, seed=args.seed),
        "eroded": ImageDataGenerator(erosion=1.0).augment(x_test, seed=args.seed),
    }
    sample = x_test[:8].astype("float32")
    for name in ("noisy", "eroded"):
        path = f"{args.out}/custom_augmentation_{name}.png"
        before_after(sample, test_sets[name][:8], path)
        print(f"before/after ({name}): {path}")

    print(f"training on {len(x_train)} digits, {args.epochs} epochs per model")
    print(f"{'trained with':18s}" + "".join(f"{name:>9s}" for name in test_sets) + "  s/epoch")
    report = {"train_images": len(x_train), "epochs": args.epochs, "accuracy": {}}
    for label, extras in EXTRAS.items():
        keras.utils.set_random_seed(args.seed)
        datagen = ImageDataGenerator(rescale=1 / 255, **extras)
        model = convnet(x_train.shape[1:])
        model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
        start = time.perf_counter()
        model.fit(
            datagen.flow(x_train, y_train, batch_size=128, seed=args.seed),
            epochs=args.epochs, shuffle=False, verbose=0,
        )  # fmt: skip
        seconds = (time.perf_counter() - start) / args.epochs
        scores = [
            model.evaluate(datagen.flow(x, y_test, augment=False), verbose=0)[1]
            for x in test_sets.values()
        ]
        print(f"{label:18s}" + "".join(f"{s:9.4f}" for s in scores) + f"  {seconds:7.1f}")
        report["accuracy"][label] = dict(zip(test_sets, scores, strict=True))
        report.setdefault("seconds_per_epoch", {})[label] = seconds
    with open(f"{args.out}/custom_augmentation.json", "w") as file:
        json.dump(report, file, indent=1)


if __name__ == "__main__":
    main()
