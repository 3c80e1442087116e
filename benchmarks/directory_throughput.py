"""Images per second from folders of image files: kaug against Keras, PNG and JPEG.

Writes real MNIST digits (from ../shared/data/mnist.npz) as PNG and as JPEG files
into class-per-folder trees, then measures one epoch of batches from each:

- kaug `flow_from_directory` (decoding workers, augmentation on the device);
- Keras's legacy `flow_from_directory` (decode and augment per image, in order);
- `keras.utils.image_dataset_from_directory` (where its backend can run it).

All with the classic suite (rotation 90, shifts 0.2, flips) except Keras's
`image_dataset_from_directory`, which only decodes. kaug runs with each of its
decoders: "auto" (kornia-rs for files at the target size; on CUDA, JPEGs on the
GPU), "pil" (Keras's decoder for every file) and "torchvision" (JPEGs decoded by
torchvision.io on the device). Also times each decoder alone on the files' bytes.
Median of `--repeats` epochs.

    python benchmarks/directory_throughput.py [--images 4000] [--size 28] [--repeats 3]
    python benchmarks/directory_throughput.py --smoke
"""

import argparse
import json
import os
import pathlib
import statistics
import tempfile
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
from common import SUITE, default_data  # noqa: E402
from PIL import Image  # noqa: E402


def write_tree(root, images, labels, extension, size):
    """One folder per class; digits resized to size x size, saved as `extension`."""
    for index, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image, "L")
        if size != 28:
            picture = picture.resize((size, size), Image.Resampling.BILINEAR)
        picture.save(folder / f"{index}.{extension}", quality=90)


def epoch_rate(make_loader, count, repeats):
    """Images per second over whole epochs of one loader, as model.fit iterates it.

    The loader is made once (kaug's decoding workers start once and persist); the
    first, warm-up epoch is excluded.
    """
    loader = make_loader()
    sum(1 for _ in _epoch(loader))
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        served = sum(len(batch[0]) for batch in _epoch(loader))
        rates.append(served / (time.perf_counter() - start))
    assert served == count, (served, count)
    return statistics.median(rates)


def decode_rate(datas, decode):
    """Files per second through `decode`, best of three passes."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for data in datas:
            decode(data)
        best = min(best, time.perf_counter() - start)
    return len(datas) / best


def decoder_rates(datas, size):
    """Each decoder alone, on the files' bytes, in this process."""
    import torch

    from kaug.data import decoding

    target = ("grayscale", (size, size))
    rates = {"decode only: PIL": decode_rate(datas, lambda d: decoding.decode_pil(d, *target))}
    header = decoding.read_header(datas[0])
    kornia_rs = decoding.FileDecoder(*target, "nearest", False)
    rates["decode only: kornia-rs"] = (
        decode_rate(datas, kornia_rs)
        if header is not None and decoding.kornia_rs_io() is not None
        else "unavailable (kornia-rs missing or files not decodable by it)"
    )
    tvio = decoding.torchvision_io()
    if tvio is not None and header is not None and header[0] == "jpeg":
        tensors = [torch.frombuffer(bytearray(d), dtype=torch.uint8) for d in datas]
        cpu = torch.device("cpu")
        # one call decodes the whole list, as the loader makes one call per batch
        calls = decode_rate([tensors], lambda t: decoding.decode_jpegs(t, *target, "nearest",
                                                                       False, cpu))  # fmt: skip
        rates["decode only: torchvision.io (CPU)"] = calls * len(tensors)
    return rates


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--images", type=int, default=4000)
    parser.add_argument("--size", type=int, default=28, help="side of the written images")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default=None)
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--json", default="directory_throughput.json")
    parser.add_argument("--smoke", action="store_true", help="a few images (CI)")
    args = parser.parse_args()
    count, repeats = (96, 1) if args.smoke else (args.images, args.repeats)
    with np.load(args.data) as data:
        images, labels = data["x_train"][:count], data["y_train"][:count]

    from keras.src.legacy.preprocessing.image import ImageDataGenerator as KerasGenerator

    from kaug import ImageDataGenerator

    kaug, legacy = ImageDataGenerator(**SUITE, device=args.device), KerasGenerator(**SUITE)
    target = dict(target_size=(args.size, args.size), color_mode="grayscale")
    report = {"images": count, "size": args.size, "batch_size": args.batch_size,
              "device": str(kaug.device), "cpu_count": os.cpu_count(), "results": {}}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        for extension in ("png", "jpg"):
            root = pathlib.Path(tmp) / extension
            write_tree(root, images, labels, extension, args.size)
            loaders = loaders_for(root, kaug, legacy, args, target)
            rates = {}
            for name, make in loaders.items():
                try:
                    rates[name] = epoch_rate(make, count, repeats)
                except Exception as error:  # a path this backend cannot run is reported
                    rates[name] = f"unavailable ({type(error).__name__}: {str(error)[:80]})"
            paths = sorted(root.rglob(f"*.{extension}"))[:500]
            rates.update(decoder_rates([p.read_bytes() for p in paths], args.size))
            report["results"][extension] = rates
            size = f"{args.size}x{args.size}"
            print(f"{extension.upper()}: {count} images of {size}, batch {args.batch_size}")
            for name, rate in rates.items():
                print(
                    f"  {name:36s} "
                    + (f"{rate:10,.0f} images/s" if isinstance(rate, float) else rate)
                )
    pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


def loaders_for(root, kaug, legacy, args, target):
    """name -> function giving one epoch of batches from the tree at `root`."""
    kaug_loaders = {
        f"kaug (decoder={decoder})": lambda decoder=decoder: kaug.flow_from_directory(
            root, batch_size=args.batch_size, seed=0, decoder=decoder, **target
        )
        for decoder in ("auto", "pil", "torchvision")
    }
    return {
        **kaug_loaders,
        "keras legacy": lambda: legacy.flow_from_directory(
            str(root), batch_size=args.batch_size, seed=0, **target
        ),
        "keras image_dataset_from_directory": lambda: _keras_dataset(root, args),
    }


def _epoch(loader):
    """One epoch of batches: a DataLoader's iteration, or len() batches of a Keras
    legacy iterator (which otherwise loops forever)."""
    if hasattr(loader, "__getitem__") and not hasattr(loader, "dataset"):
        return (loader[i] for i in range(len(loader)))
    return loader.epoch() if hasattr(loader, "epoch") else iter(loader)


def _keras_dataset(root, args):
    import keras

    return keras.utils.image_dataset_from_directory(
        root, image_size=(args.size, args.size), color_mode="grayscale",
        batch_size=args.batch_size, verbose=False,
    )  # fmt: skip


if __name__ == "__main__":
    main()
