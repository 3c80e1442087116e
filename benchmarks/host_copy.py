"""What serving numpy batches to user code costs: the host copy of `augment`'s rule.

Iterating a loader of numpy data (`for batch in loader`, `next(loader)`,
`loader[i]`) serves numpy arrays, as Keras's iterators did; `model.fit`,
`loader.epoch()` and `output="torch"` take the device tensors. For each size,
on batches of the classic suite (rotation 90, shifts 0.2, flips):

- `conversion`: `host_batch` on a served batch alone, the work numpy output adds
  (a contiguous CPU batch is shared, not copied; a channels-last view of a
  (B, C, H, W) batch is made contiguous; a GPU batch is copied to the host);
- `next(loader)` with `output="torch"` and with `output="numpy"`, the whole
  served batch, to put the conversion in proportion.

Median milliseconds of `--repeats` timed calls (the device synchronised), after
a warm-up.

    python benchmarks/host_copy.py [--device cpu|cuda] [--repeats 50] [--json host_copy.json]
    python benchmarks/host_copy.py --smoke   # tiny sizes: CI's check
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402
from common import SUITE, default_data  # noqa: E402
from throughput import images_for, machine, write_report  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402
from kaug.data.loader import host_batch  # noqa: E402

# (height, width, channels), batch size: an ImageNet-sized batch and an MNIST one.
CASES = [((224, 224, 3), 32), ((28, 28, 1), 128)]


def median_ms(call, repeats, device):
    """Median milliseconds of `call()` over `repeats` calls, after one warm-up call."""
    call()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def measure(size, batch_size, device, repeats, data):
    images = images_for(size, 4 * batch_size, data)
    datagen = ImageDataGenerator(**SUITE, device=device)
    loaders = {
        output: datagen.flow(images, batch_size=batch_size, seed=0, output=output)
        for output in ("torch", "numpy")
    }
    batch = next(loaders["torch"])
    shared = batch.device.type == "cpu" and host_batch(batch).ctypes.data == batch.data_ptr()
    return {
        "size": list(size),
        "batch_size": batch_size,
        "megabytes": batch.numel() * batch.element_size() / 2**20,
        "served_contiguous": batch.is_contiguous(),
        "shared_not_copied": shared,
        "conversion_ms": median_ms(lambda: host_batch(batch), repeats, device),
        "next_torch_ms": median_ms(lambda: next(loaders["torch"]), repeats, device),
        "next_numpy_ms": median_ms(lambda: next(loaders["numpy"]), repeats, device),
    }


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--json", default="host_copy.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few calls (CI)")
    args = parser.parse_args()
    device = torch.device(args.device)
    cases, repeats = CASES, args.repeats
    if args.smoke:
        cases, repeats = [((32, 32, 3), 8), ((28, 28, 1), 8)], 2
    print(f"device {device}; {machine(device)}")
    print(f"{'batch':>16s} {'MB':>6s} {'conversion':>11s} {'next torch':>11s} "
          f"{'next numpy':>11s} {'share':>6s}  how")  # fmt: skip
    results = []
    for size, batch_size in cases:
        row = measure(size, batch_size, device, repeats, args.data)
        results.append(row)
        how = "shared" if row["shared_not_copied"] else "copied"
        print(
            f"{batch_size:>4d}x{'x'.join(map(str, size)):>11s} {row['megabytes']:6.1f} "
            f"{row['conversion_ms']:9.3f}ms {row['next_torch_ms']:9.2f}ms "
            f"{row['next_numpy_ms']:9.2f}ms "
            f"{row['conversion_ms'] / row['next_torch_ms']:6.1%}  {how}"
        )
    write_report(
        args.json, "host copy of served batches (numpy output), classic suite", device,
        {"repeats": repeats, "smoke": args.smoke}, results,
    )  # fmt: skip


if __name__ == "__main__":
    main()
