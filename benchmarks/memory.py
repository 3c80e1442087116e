"""What `flow()` costs in memory and start-up: peak RSS and flow() time, big data.

Each case runs in a fresh Python process (its peak RSS, `ru_maxrss`, is its own),
with `import kaug` resolved to the checkout under test, so this checkout and
another one (`--baseline PATH`, e.g. main's code in a temporary folder) are
measured in one run, case by case, on the same files:

- `flow-times`: flow() time on small arrays (median of 20 calls): 60,000 x
  28x28x1 and 8,192 x 32x32x3, uint8 and float32.
- `memory`: a `--memory-gb` uint8 array of 224x224x3 images in memory: RSS
  before the data, flow() time, `--loader-batches` batches of the loader alone
  (read, augment, standardize), then one `model.fit` epoch of a small CNN
  through `flow` (augmented), its peak RSS and batches per second.
- `mmap-small`: the first `--memory-gb` of the memory-mapped file, the same way.
- `mmap`: a `--mmap-gb` memory-mapped `.npy` (written by this script in 64 MB
  chunks, evicted from the page cache, deleted at the end): flow() time, then
  `--mmap-batches` batches of `model.fit` (0: a whole epoch), peak RSS, and the
  RSS sampled along the way to show it stays flat.

Every case also reports the peaks of anonymous and file-backed RSS (sampled
every 20 ms from /proc/self/status): importing torch and keras alone maps about
1 GB of libraries and heap, which is in every process's RSS whatever kaug does.
A watchdog kills a case whose RSS passes `--rss-limit-gb` (the machine is shared).

    python benchmarks/memory.py [--baseline /tmp/kaug-main] [--memory-gb 3] [--mmap-gb 30]
                                [--mmap-batches 0] [--dir /tmp] [--json memory.json]
    python benchmarks/memory.py --smoke   # tiny sizes: CI's check
"""

import argparse
import json
import os
import pathlib
import platform
import resource
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

HERE = pathlib.Path(__file__).resolve().parent
CHECKOUT = HERE.parent
SHAPE = (224, 224, 3)
CHUNK = 64 * 2**20
AUGMENTATION = dict(rotation_range=20, width_shift_range=0.1, height_shift_range=0.1,
                    horizontal_flip=True, rescale=1 / 255)  # fmt: skip


# --- inside a case's process ------------------------------------------------------------


class RssSampler:
    """Peaks of VmRSS, RssAnon and RssFile (MiB), read every `interval` seconds."""

    def __init__(self, interval=0.02):
        self.peaks = {"VmRSS": 0, "RssAnon": 0, "RssFile": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    @staticmethod
    def now():
        values = {}
        with open("/proc/self/status") as lines:
            for line in lines:
                key = line.split(":")[0]
                if key in ("VmRSS", "RssAnon", "RssFile"):
                    values[key] = int(line.split()[1]) / 1024
        return values

    def _run(self, interval):
        while not self._stop.wait(interval):
            for key, value in self.now().items():
                self.peaks[key] = max(self.peaks[key], value)

    def stop(self):
        self._stop.set()
        self._thread.join()
        return {f"peak_{key}_mib": round(value) for key, value in self.peaks.items()}


def max_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def small_cnn(keras):
    """A small CNN for 224x224x3 (pooled to 56x56 first) that costs little next to the
    data path."""
    return keras.Sequential([
        keras.Input(SHAPE),
        keras.layers.AveragePooling2D(4),
        keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(10, activation="softmax"),
    ])  # fmt: skip


def in_memory(gigabytes):
    """A uint8 array of about `gigabytes` GB of 224x224x3 images, filled in chunks."""
    import numpy as np

    count = int(gigabytes * 1e9) // int(np.prod(SHAPE))
    x = np.empty((count, *SHAPE), np.uint8)
    block = np.random.default_rng(0).integers(0, 256, (CHUNK,), dtype=np.uint8)
    flat = x.reshape(-1)
    for start in range(0, flat.size, CHUNK):
        part = flat[start : start + CHUNK]
        np.add(block[: len(part)], (start // CHUNK) % 256, out=part, casting="unsafe")
    return x


def timed_flow(datagen, x, y, **kwargs):
    start = time.perf_counter()
    loader = datagen.flow(x, y, **kwargs)
    return loader, time.perf_counter() - start


def run_flow_times():
    import numpy as np

    from kaug import ImageDataGenerator

    datagen = ImageDataGenerator(device="cpu")
    results = {}
    rng = np.random.default_rng(0)
    for count, shape in [(60000, (28, 28, 1)), (8192, (32, 32, 3))]:
        for dtype in ("uint8", "float32"):
            x = rng.integers(0, 256, (count, *shape), dtype=np.uint8).astype(dtype)
            y = np.arange(count) % 10
            timed_flow(datagen, x, y)  # warm-up
            seconds = [timed_flow(datagen, x, y)[1] for _ in range(20)]
            label = f"{count} x {'x'.join(map(str, shape))} {dtype}"
            results[label] = round(statistics.median(seconds) * 1e3, 2)
    return {"flow_ms": results}


def loader_alone(loader, batches):
    """Batches per second of the loader alone (read, augment, standardize), no model."""
    epoch = loader.epoch()
    next(epoch)  # the first batch is read when asked for; the ones after it, ahead
    start = time.perf_counter()
    for _ in range(min(batches, len(loader) - 1)):
        next(epoch)
    seconds = time.perf_counter() - start
    epoch.close()
    loader.on_epoch_end()
    return {"loader_batches_per_second": round(min(batches, len(loader) - 1) / seconds, 2)}


def train(loader, batches, keras):
    """`batches` batches of model.fit (0: one epoch): seconds, batches/s, RSS along the way."""
    model = small_cnn(keras)
    model.compile("adam", "sparse_categorical_crossentropy")
    steps = len(loader) if not batches else min(batches, len(loader))
    samples = []

    class Trace(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch % max(1, steps // 10) == 0 or batch == steps - 1:
                samples.append((batch + 1, round(RssSampler.now()["VmRSS"])))

    start = time.perf_counter()
    model.fit(loader, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[Trace()])
    seconds = time.perf_counter() - start
    return {"fit_batches": steps, "fit_seconds": round(seconds, 1),
            "batches_per_second": round(steps / seconds, 2),
            "rss_mib_after_batches": samples}  # fmt: skip


def run_case(args):
    sampler = RssSampler()
    report = {"rss_mib_at_start": round(RssSampler.now()["VmRSS"])}
    import keras
    import numpy as np

    import kaug
    from kaug import ImageDataGenerator

    report["kaug"] = str(pathlib.Path(kaug.__file__).parent.parent)
    report["rss_mib_after_imports"] = round(RssSampler.now()["VmRSS"])
    if args.case == "flow-times":
        report.update(run_flow_times())
        report.update(max_rss_mib=round(max_rss_mib()), **sampler.stop())
        return report
    if args.case == "memory":
        x = in_memory(args.memory_gb)
        kwargs = {}
    else:
        x = np.load(args.file, mmap_mode="r")
        if args.case == "mmap-small":
            x = x[: int(args.memory_gb * 1e9) // x[0].nbytes]
        kwargs = {"resident": False}  # what the issue measured on the old code
    report.update(images=len(x), shape=list(x.shape[1:]), data_gb=round(x.nbytes / 1e9, 2))
    report["rss_mib_with_data"] = round(RssSampler.now()["VmRSS"])
    y = np.arange(len(x)) % 10
    datagen = ImageDataGenerator(**AUGMENTATION, device="cpu")
    try:
        loader, seconds = timed_flow(datagen, x, y, batch_size=args.batch_size, **kwargs)
    except (MemoryError, RuntimeError, ValueError) as error:
        report["flow_error"] = f"{type(error).__name__}: {str(error)[:200]}"
        report.update(max_rss_mib=round(max_rss_mib()), **sampler.stop())
        return report
    report["flow_ms_first"] = round(seconds * 1e3, 2)
    if seconds < 0.5:  # an O(1) flow(): its median; a copying one is not repeated
        again = [timed_flow(datagen, x, y, batch_size=args.batch_size, **kwargs)[1]
                 for _ in range(5)]  # fmt: skip
        report["flow_ms_median"] = round(statistics.median(again) * 1e3, 2)
    report["max_rss_mib_after_flow"] = round(max_rss_mib())
    report.update(loader_alone(loader, args.loader_batches))
    batches = args.mmap_batches if args.case == "mmap" else args.memory_batches
    report.update(train(loader, batches, keras))
    report.update(max_rss_mib=round(max_rss_mib()), **sampler.stop())
    return report


# --- the parent: files, processes, report -----------------------------------------------


def write_npy(path, gigabytes):
    """A uint8 .npy of 224x224x3 images, written in chunks (never whole in memory), then
    flushed and evicted from the page cache, so reading it starts from the disk."""
    import numpy as np

    count = int(gigabytes * 1e9) // int(np.prod(SHAPE))
    header = {"descr": "|u1", "fortran_order": False, "shape": (count, *SHAPE)}
    block = np.random.default_rng(1).integers(0, 256, (CHUNK,), dtype=np.uint8)
    total = count * int(np.prod(SHAPE))
    start = time.perf_counter()
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, header)
        for index, offset in enumerate(range(0, total, CHUNK)):
            (block[: min(CHUNK, total - offset)] + np.uint8(index % 256)).tofile(handle)
        handle.flush()
        os.fsync(handle.fileno())
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    print(f"wrote {path}: {total / 1e9:.1f} GB in {time.perf_counter() - start:.0f} s")
    return path


def run_in_process(code, case, args, file=None):
    """One case in a fresh process with `import kaug` from `code`; its JSON report."""
    command = [sys.executable, str(pathlib.Path(__file__).resolve()), "--case", case,
               "--memory-gb", str(args.memory_gb), "--memory-batches",
               str(args.memory_batches), "--mmap-batches", str(args.mmap_batches),
               "--batch-size", str(args.batch_size),
               "--loader-batches", str(args.loader_batches)]  # fmt: skip
    if file:
        command += ["--file", str(file)]
    env = {**os.environ, "PYTHONPATH": str(code), "KERAS_BACKEND": "torch"}
    start = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=str(code), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    limit_kb, peak_kb = args.rss_limit_gb * 2**20, 0
    while process.poll() is None:  # the watchdog
        try:
            with open(f"/proc/{process.pid}/status") as lines:
                rss = [int(line.split()[1]) for line in lines if line.startswith("VmRSS")]
        except OSError:
            rss = []
        peak_kb = max([peak_kb, *rss])
        if rss and rss[0] > limit_kb:
            process.kill()
            process.wait()
            return {"killed": f"RSS passed {args.rss_limit_gb} GB"}
        time.sleep(0.2)
    stdout, stderr = process.communicate()
    if process.returncode != 0:
        return {"failed": stderr.strip().splitlines()[-1] if stderr.strip() else "no output"}
    report = json.loads(stdout.strip().splitlines()[-1])
    report["process_seconds"] = round(time.perf_counter() - start, 1)
    return report


def describe(tree, case, report):
    if "killed" in report or "failed" in report:
        print(f"  {tree:9s} {case:11s} {report.get('killed') or report.get('failed')}")
        return
    if case == "flow-times":
        times = ", ".join(f"{k}: {v} ms" for k, v in report["flow_ms"].items())
        print(f"  {tree:9s} {case:11s} flow() {times}")
        return
    line = (f"  {tree:9s} {case:11s} {report['data_gb']} GB: peak RSS {report['max_rss_mib']} MiB "
            f"(imports {report['rss_mib_after_imports']}, with data {report['rss_mib_with_data']}; "
            f"anon {report['peak_RssAnon_mib']}, file {report['peak_RssFile_mib']})")  # fmt: skip
    if "flow_error" in report:
        print(f"{line}; flow() failed: {report['flow_error']}")
        return
    print(f"{line}; flow() {report['flow_ms_first']} ms (median "
          f"{report.get('flow_ms_median', '-')} ms); {report['fit_batches']} batches of "
          f"model.fit in {report['fit_seconds']} s = {report['batches_per_second']} batches/s "
          f"(loader alone {report['loader_batches_per_second']}/s)")  # fmt: skip


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawTextHelpFormatter)  # fmt: skip
    parser.add_argument("--baseline", help="another kaug checkout to measure beside this one")
    parser.add_argument("--memory-gb", type=float, default=3.0)
    parser.add_argument("--mmap-gb", type=float, default=30.0)
    parser.add_argument("--memory-batches", type=int, default=0, help="0: one epoch")
    parser.add_argument("--mmap-batches", type=int, default=0, help="0: one epoch")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--loader-batches", type=int, default=50, help="timed without a model")
    parser.add_argument("--cases", default="flow-times,memory,mmap-small,mmap")
    parser.add_argument("--dir", default="/tmp", help="where the .npy file is written")
    parser.add_argument("--rss-limit-gb", type=float, default=14.0)
    parser.add_argument("--json", default="memory.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    parser.add_argument("--data", help=argparse.SUPPRESS)  # the smoke tests' common flag
    parser.add_argument("--case", help=argparse.SUPPRESS)  # inside a case's process
    parser.add_argument("--file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args)))
        return
    if args.smoke:
        args.memory_gb, args.mmap_gb, args.memory_batches, args.mmap_batches = 0.03, 0.06, 4, 4
        args.loader_batches = 3
        args.cases = "memory,mmap"
    trees = {"this": CHECKOUT}
    if args.baseline:
        trees["baseline"] = pathlib.Path(args.baseline).resolve()
    cases = args.cases.split(",")
    path = pathlib.Path(args.dir) / f"kaug_memory_{os.getpid()}.npy"
    results = {name: {} for name in trees}
    try:
        if {"mmap", "mmap-small"} & set(cases):
            write_npy(path, args.mmap_gb)
        for case in cases:
            for name, code in trees.items():
                report = run_in_process(code, case, args, path if "mmap" in case else None)
                results[name][case] = report
                describe(name, case, report)
    finally:
        path.unlink(missing_ok=True)
    import torch

    report = {
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE")
                                       * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "versions": {"python": platform.python_version(), "torch": torch.__version__},
        "settings": {"memory_gb": args.memory_gb, "mmap_gb": args.mmap_gb,
                     "memory_batches": args.memory_batches, "mmap_batches": args.mmap_batches,
                     "batch_size": args.batch_size, "loader_batches": args.loader_batches,
                     "shape": SHAPE, "augmentation": AUGMENTATION,
                     "trees": {name: str(code) for name, code in trees.items()}},
        "results": results,
    }  # fmt: skip
    pathlib.Path(args.json).write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
