"""Images per second of augmentation alone: kaug against every peer, in one run.

The classic suite (rotation up to 90 degrees, width and height shifts of 0.2,
horizontal and vertical flips, nearest fill) at 28x28x1 (real MNIST), 32x32x3 and
224x224x3, for:

- kaug: `flow` batches, data resident on the device (uint8), float32 out;
- Keras's legacy ImageDataGenerator (`keras.src.legacy`): scipy, per image;
- Keras 3 preprocessing layers (RandomRotation, RandomTranslation, RandomFlip),
  on batches, torch backend;
- kornia AugmentationSequential (RandomAffine + flips), on batches;
- torchvision v2, per image on uint8 tensors, as a DataLoader worker runs it;
- albumentations, per image on uint8 arrays (OpenCV).

Everything runs in this one process: after a warm-up pass each, the libraries
are timed in turn, round after round, and each one's median is reported, with
the device synchronised. Prints a table and writes a JSON file (machine, versions,
settings, results).

    python benchmarks/throughput.py [--device cpu|cuda] [--repeats 5] [--json results.json]
    python benchmarks/throughput.py --smoke   # tiny sizes, a few batches: CI's check
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from common import SUITE, default_data  # noqa: E402

SIZES = [(28, 28, 1), (32, 32, 3), (224, 224, 3)]


def images_for(size, count, data_path):
    """`count` uint8 (N, H, W, C) images: real MNIST at 28x28x1, else MNIST-derived RGB."""
    height, width, channels = size
    rng = np.random.default_rng(0)
    if data_path and pathlib.Path(data_path).exists():
        with np.load(data_path) as data:
            digits = data["x_train"][: count * 3]
    else:
        digits = rng.integers(0, 256, (count * 3, 28, 28), dtype=np.uint8)
    if size == (28, 28, 1):
        return np.ascontiguousarray(digits[:count, :, :, None])
    reps = -(-height // 28)
    tiled = np.tile(digits, (1, reps, reps))[:, :height, :width]
    rgb = np.stack([tiled[0::3], tiled[1::3], 255 - tiled[2::3]], -1)[:count]
    return np.ascontiguousarray(rgb)


# -- one runner per library: returns a function that augments one batch ---------------


def kaug_runner(images, batch_size, device):
    from kaug import ImageDataGenerator

    datagen = ImageDataGenerator(**SUITE, device=device)
    # the device tensors, as model.fit takes them (iteration would copy numpy data's to the host)
    loader = datagen.flow(images, batch_size=batch_size, seed=0, resident=True, output="torch")

    def run():
        return next(loader)

    return run


def keras_legacy_runner(images, batch_size, device):
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    datagen = ImageDataGenerator(**SUITE)
    iterator = datagen.flow(images.astype("float32"), batch_size=batch_size, seed=0)
    return lambda: next(iterator)


def keras_layers_runner(images, batch_size, device):
    import keras

    layers = keras.Sequential(
        [
            keras.layers.RandomRotation(0.25, fill_mode="nearest"),  # 0.25 turn = 90 degrees
            keras.layers.RandomTranslation(0.2, 0.2, fill_mode="nearest"),
            keras.layers.RandomFlip("horizontal_and_vertical"),
        ]
    )
    data = torch.as_tensor(images, device=device)
    batches = _cycle_batches(data, batch_size)
    return lambda: layers(next(batches).float(), training=True)


def kornia_runner(images, batch_size, device):
    import kornia.augmentation as K

    augment = K.AugmentationSequential(
        K.RandomAffine(degrees=90, translate=(0.2, 0.2), padding_mode="border", p=1.0),
        K.RandomHorizontalFlip(),
        K.RandomVerticalFlip(),
    )
    data = torch.as_tensor(images, device=device).permute(0, 3, 1, 2)
    batches = _cycle_batches(data, batch_size)
    return lambda: augment(next(batches).float())


def torchvision_runner(images, batch_size, device):
    from torchvision.transforms import v2

    augment = v2.Compose(
        [
            v2.RandomAffine(degrees=90, translate=(0.2, 0.2)),
            v2.RandomHorizontalFlip(),
            v2.RandomVerticalFlip(),
        ]
    )
    data = torch.as_tensor(images).permute(0, 3, 1, 2)  # uint8 CHW images, on the host
    batches = _cycle_batches(data, batch_size)

    def run():  # a worker's loop, then the collate and the upload
        batch = torch.stack([augment(image) for image in next(batches)])
        return batch.to(device).float()

    return run


def albumentations_runner(images, batch_size, device):
    import albumentations as A
    import cv2

    augment = A.Compose(
        [
            A.Affine(
                rotate=(-90, 90),
                translate_percent=(-0.2, 0.2),
                p=1.0,
                border_mode=cv2.BORDER_REPLICATE,
            ),  # fmt: skip
            A.HorizontalFlip(),
            A.VerticalFlip(),
        ]
    )
    batches = _cycle_batches(images, batch_size)

    def run():
        batch = np.stack([augment(image=image)["image"] for image in next(batches)])
        return torch.as_tensor(batch, device=device).float()

    return run


def _cycle_batches(data, batch_size):
    while True:
        for start in range(0, len(data) - batch_size + 1, batch_size):
            yield data[start : start + batch_size]


RUNNERS = {
    "kaug": kaug_runner,
    "keras legacy": keras_legacy_runner,
    "keras layers": keras_layers_runner,
    "kornia": kornia_runner,
    "torchvision v2": torchvision_runner,
    "albumentations": albumentations_runner,
}


def timed_pass(run, batch_size, device, min_seconds):
    """Images per second over at least `min_seconds` of batches, device synchronised."""
    batches, start = 0, time.perf_counter()
    while True:
        run()
        batches += 1
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return batches * batch_size / elapsed


def measure_round_robin(runners, batch_size, device, repeats, min_seconds):
    """Median images/s per library; each repeat times every library once, in turn.

    Interleaving keeps the ratios honest on a machine whose speed drifts (shared
    or throttled CPUs): all libraries see the same conditions in each round.
    """
    for run in runners.values():
        timed_pass(run, batch_size, device, min_seconds)  # warm-up
    samples = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            samples[name].append(timed_pass(run, batch_size, device, min_seconds))
    return {name: statistics.median(values) for name, values in samples.items()}


def measure_row(make, names, label, batch_size, device, repeats, seconds):
    """Images/s of every library in `names` (None for one that cannot run here, with
    the reason printed), printed as one table row. `make(name)` builds a runner."""
    runners = {}
    for name in names:
        try:
            runners[name] = make(name)
            runners[name]()
        except Exception as error:  # a peer that cannot run here is reported as such
            runners.pop(name, None)
            print(f"  {name} failed at {label}: {type(error).__name__}: {error}")
    row = dict.fromkeys(names)
    row.update(measure_round_robin(runners, batch_size, device, repeats, seconds))
    cells = "".join(f"{row[n]:16,.0f}" if row[n] else f"{'-':>16s}" for n in names)
    print(f"{label:>12s} {batch_size:6d} {cells}")
    return row


def write_report(path, benchmark, device, settings, results):
    """The JSON report every throughput benchmark writes: machine, versions, results."""
    report = {
        "benchmark": benchmark, "device": str(device), "machine": machine(device),
        "versions": versions(), "settings": settings, "results": results,
    }  # fmt: skip
    pathlib.Path(path).write_text(json.dumps(report, indent=2))
    print(f"wrote {path}")


def versions():
    found = {"python": platform.python_version()}
    for name in ("torch", "keras", "kornia", "torchvision", "albumentations", "scipy", "numpy"):
        try:
            found[name] = __import__(name).__version__
        except Exception as error:  # a missing peer is reported, not fatal
            found[name] = f"unavailable ({type(error).__name__})"
    return found


def machine(device):
    info = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum length of a timed pass")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="default: 128 (CPU), 256 (GPU); 32 at 224x224 on the CPU",
    )
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--only", nargs="*", default=None, help="run only these libraries")
    parser.add_argument(
        "--sizes", nargs="*", default=None, help="e.g. 224x224x3 (default: all three)"
    )
    parser.add_argument("--json", default="throughput.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few batches (CI)")
    args = parser.parse_args()
    device = torch.device(args.device)
    sizes, repeats, seconds = SIZES, args.repeats, args.seconds
    if args.sizes:
        sizes = [tuple(int(v) for v in size.split("x")) for size in args.sizes]
    if args.smoke:
        sizes, repeats, seconds = [(28, 28, 1), (32, 32, 3)], 1, 0.01

    results = []
    names = args.only or list(RUNNERS)
    print(f"device {device}; {machine(device)}")
    print(f"{'size':>12s} {'batch':>6s} " + "".join(f"{name:>16s}" for name in names))
    for size in sizes:
        batch_size = args.batch_size or (
            256 if device.type == "cuda" else (32 if size[0] > 64 else 128)
        )
        if args.smoke:
            batch_size = 8
        images = images_for(size, max(4 * batch_size, 64), args.data)
        row = measure_row(
            lambda name: RUNNERS[name](images, batch_size, device),  # noqa: B023
            names, "x".join(map(str, size)), batch_size, device, repeats, seconds,
        )  # fmt: skip
        results.append({"size": list(size), "batch_size": batch_size, "images_per_second": row})
        if row.get("kaug"):
            peers = {n: v for n, v in row.items() if n != "kaug" and v}
            if peers:
                best = max(peers, key=peers.get)
                legacy = row.get("keras legacy") or float("nan")
                print(
                    f"{'':>19s} kaug / best peer ({best}): {row['kaug'] / peers[best]:.2f}x; "
                    f"kaug / keras legacy: {row['kaug'] / legacy:.1f}x"
                )
    write_report(
        args.json, "augmentation throughput, classic suite (rotation 90, shifts 0.2, flips)",
        device, {"repeats": repeats, "min_seconds_per_pass": seconds, "smoke": args.smoke},
        results,
    )  # fmt: skip


if __name__ == "__main__":
    main()
