"""Does training through kaug reach what Keras's own generator reaches?

The setup of tests/test_training.py (10,000 real MNIST digits, rotation 15,
shifts 0.1, rescale 1/255, a small CNN, batch 64, 3 epochs), trained through
kaug's `flow` and through Keras's legacy `ImageDataGenerator.flow`, side by side,
for a few seeds. Prints test accuracy (2,000 test digits) and seconds per epoch.

    python benchmarks/training_parity.py [--data mnist.npz] [--seeds 3] [--json report.json]
    python benchmarks/training_parity.py --smoke   # 1 seed, 500 digits, 1 epoch: CI's check
"""

import argparse
import json
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
from common import default_data, load_mnist, small_cnn  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402

ARGS = dict(rotation_range=15, width_shift_range=0.1, height_shift_range=0.1, rescale=1 / 255)


def train(make_flow, x, y, x_test, y_test, seed, epochs=3):
    keras.utils.set_random_seed(seed)
    model = small_cnn(filters=(16, 32))
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(make_flow(x, y), epochs=epochs, verbose=0)
    seconds = (time.perf_counter() - start) / epochs
    _, accuracy = model.evaluate(x_test / 255.0, y_test, verbose=0)
    return accuracy, seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--json", default="training_parity.json")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 500 digits, 1 epoch (CI)")
    args = parser.parse_args()
    train_count, test_count, seeds, epochs = (
        (500, 200, 1, 1) if args.smoke else (10000, 2000, args.seeds, 3)
    )
    x, y, x_test, y_test = load_mnist(args.data, train_count, test_count)
    x, x_test = x[..., None], x_test[..., None]
    kaug, legacy = ImageDataGenerator(**ARGS), KerasGenerator(**ARGS)
    runs = {
        "kaug": lambda a, b: kaug.flow(a, b, batch_size=64),
        "keras legacy": lambda a, b: legacy.flow(a.astype("float32"), b, batch_size=64),
    }
    print(f"device {kaug.device}; torch backend; {seeds} seeds")
    report = {"train_images": len(x), "test_images": len(x_test), "epochs": epochs, "runs": {}}
    for name, make_flow in runs.items():
        results = [train(make_flow, x, y, x_test, y_test, seed, epochs) for seed in range(seeds)]
        accuracies = [a for a, _ in results]
        seconds = statistics.median(s for _, s in results)
        report["runs"][name] = {"accuracy": accuracies, "seconds_per_epoch": seconds}
        print(
            f"{name:13s} test accuracy {statistics.mean(accuracies):.4f} "
            f"(min {min(accuracies):.4f}, max {max(accuracies):.4f}); "
            f"{seconds:.1f} s per epoch"
        )
    with open(args.json, "w") as file:
        json.dump(report, file, indent=1)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
