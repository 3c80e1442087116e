"""What augmentation costs a training epoch, and what `fit()`'s statistics cost.

1. One `model.fit` epoch of a small CNN on real MNIST (60,000 digits) three
   ways: no augmentation (a plain DataLoader of the resident arrays), kaug's
   `flow` with the classic suite, and Keras's legacy generator with the same
   suite. Reports seconds per epoch and the ratios to the unaugmented epoch.
2. The fit pass: `fit()` with featurewise center + std + ZCA on 60,000 MNIST
   digits and on 50,000 images of 32x32x3, kaug against Keras's legacy class.

All in one process; epochs are timed round-robin (one of each per round) and
medians of `--repeats` rounds reported.

    python benchmarks/fit_overhead.py [--device cpu|cuda] [--repeats 3] [--json fit.json]
    python benchmarks/fit_overhead.py --smoke   # tiny sizes: CI's check
"""

import argparse
import json
import os
import pathlib
import statistics
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import SUITE, default_data, small_cnn  # noqa: E402
from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402


class PlainLoader(torch.utils.data.DataLoader):
    """The unaugmented baseline: resident arrays, shuffled batches, nothing else."""

    def __init__(self, x, y, batch_size, device):
        self.x = torch.as_tensor(x, device=device).float()
        self.y = torch.as_tensor(y, device=device)
        super().__init__(torch.utils.data.TensorDataset(self.y), batch_size=batch_size)

    def __len__(self):
        return -(-len(self.y) // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.y), device=self.x.device)
        for indices in order.split(self.batch_size):
            yield self.x[indices], self.y[indices]


def epoch_seconds(make_data, repeats):
    """Median seconds of one `model.fit` epoch per way of feeding it, timed round-robin.

    Each way gets its own compiled, warmed-up model; every round times one epoch
    of each, in turn, so a machine whose speed drifts treats them alike.
    """
    models = {}
    for name, make in make_data.items():
        models[name] = small_cnn(rescale=True)
        models[name].compile("adam", "sparse_categorical_crossentropy")
        models[name].fit(make(), epochs=1, steps_per_epoch=5, verbose=0)  # warm-up
    times = {name: [] for name in make_data}
    for _ in range(repeats):
        for name, make in make_data.items():
            start = time.perf_counter()
            models[name].fit(make(), epochs=1, verbose=0, shuffle=False)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def fit_seconds(generator_class, x, repeats, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zca's override of featurewise_center
        datagen = generator_class(featurewise_center=True, featurewise_std_normalization=True,
                                  zca_whitening=True, zca_epsilon=0.1, **kwargs)  # fmt: skip
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        datagen.fit(x)
        if isinstance(datagen, ImageDataGenerator) and datagen.device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--json", default="fit_overhead.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args()
    device = torch.device(args.device)
    with np.load(args.data) as data:
        x, y = data["x_train"][:, :, :, None], data["y_train"].astype("int64")
    rgb = np.random.default_rng(0).integers(0, 256, (50000, 32, 32, 3), dtype=np.uint8)
    repeats = args.repeats
    if args.smoke:  # 16x16x3 keeps ZCA's D x D matrix small
        x, y, rgb, repeats = x[:512], y[:512], np.ascontiguousarray(rgb[:256, :16, :16]), 1

    bs = args.batch_size
    kaug = ImageDataGenerator(**SUITE, device=device)
    legacy = KerasGenerator(**SUITE)
    x_float = x.astype("float32")
    epochs = epoch_seconds(
        {
            "no augmentation": lambda: PlainLoader(x, y, bs, device),
            "kaug": lambda: kaug.flow(x, y, batch_size=bs),
            "keras legacy": lambda: legacy.flow(x_float, y, batch_size=bs),
        },
        repeats,
    )
    base = epochs["no augmentation"]
    print(f"device {device}; one model.fit epoch on {len(x)} MNIST digits, batch {bs}")
    for name, seconds in epochs.items():
        print(f"  {name:16s} {seconds:8.2f} s   {seconds / base:5.2f}x the unaugmented epoch")

    fits = {}
    for data in (x, rgb):
        label = f"{len(data)} x {'x'.join(map(str, data.shape[1:]))}"
        fits[label] = {
            "kaug": fit_seconds(ImageDataGenerator, data, repeats, device=device),
            "keras legacy": fit_seconds(KerasGenerator, data, 1 if not args.smoke else repeats),
        }
        k, legacy_s = fits[label]["kaug"], fits[label]["keras legacy"]
        print(f"fit() center + std + ZCA on {label}: kaug {k:.2f} s, Keras legacy {legacy_s:.2f} s "
              f"({legacy_s / k:.1f}x)")  # fmt: skip
    report = {"device": str(device), "batch_size": bs, "repeats": repeats, "smoke": args.smoke,
              "epoch_seconds": epochs, "fit_seconds": fits,
              "versions": {"torch": torch.__version__, "keras": keras.__version__}}  # fmt: skip
    pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
