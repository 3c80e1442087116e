"""Throughput of RandAugment + MixUp, a colour pipeline + MixUp and a geometric pipeline +
MixUp: kaug vs Keras 3 layers, torchvision v2 and kornia.augmentation, side by side in
one run.

"randaugment": RandAugment (2 operations per image) then MixUp of the labels too
(one-hot, 10 classes). "colour": contrast, saturation and hue jitter, sharpness,
solarize and posterize (each on a share of the images), then MixUp. "geometric":
pad by an eighth of the side and crop back (the CIFAR recipe), a perspective on half
of the images, then MixUp (kaug composes the crop and the perspective into one
resampling). Images are real MNIST digits as RGB channels (0..255), at 32x32x3 and
224x224x3.

- kaug: `ImageDataGenerator(transforms=[...]).flow(x, y)` batches, data resident.
- Keras 3 layers (the active backend, torch here): the layers on batch tensors,
  then `keras.layers.MixUp` on {"images", "labels"}.
- torchvision v2: per-image transforms in DataLoader worker processes (one per
  core, as its users run it), then `v2.MixUp` on the collated batch.
- kornia: the augmentations on the batch (`auto.RandAugment(n=2, m=9)`), then
  `RandomMixUpV2`.

    python benchmarks/catalogue_throughput.py [--device cpu|cuda] [--pipelines randaugment]
    python benchmarks/catalogue_throughput.py --smoke
"""

import argparse
import os

import numpy as np
import torch
from common import default_data, load_mnist
from throughput import machine, measure_row, write_report

CLASSES = 10


def rgb_images(size, count, path):
    """`count` real RGB images of `size` (H, W, 3), uint8: three digits as channels."""
    x, y, _, _ = load_mnist(path, train=3 * count)
    digits = torch.from_numpy(x[: 3 * count]).float().view(3, count, 1, 28, 28)
    digits = torch.nn.functional.interpolate(
        digits.flatten(0, 1), size=size[:2], mode="bilinear"
    ).view(3, count, *size[:2])
    images = torch.stack([digits[0], 30 + 0.7 * digits[1], 220 - 0.6 * digits[2]], -1)
    return images.round().clamp(0, 255).to(torch.uint8).numpy(), y[:count].astype(np.int64)


def kaug_runner(images, labels, batch_size, device, pipeline_name):
    from kaug import ImageDataGenerator
    from kaug import transforms as T

    side = images.shape[1]
    if pipeline_name == "randaugment":
        pipeline = [T.RandAugment(num_ops=2, magnitude=9)]
    elif pipeline_name == "geometric":
        pipeline = [T.RandomCrop(side, padding=side // 8), T.RandomPerspective(0.3, p=0.5)]
    else:
        pipeline = [
            T.RandomContrast(0.4), T.RandomSaturation(0.4), T.RandomHue(0.1),
            T.RandomSharpness(0.5, p=0.5), T.RandomSolarize(0.5, p=0.2),
            T.RandomPosterize(4, p=0.2),
        ]  # fmt: skip
    pipeline.append(T.MixUp(alpha=0.2, num_classes=CLASSES))
    datagen = ImageDataGenerator(transforms=pipeline, device=device)
    # the device tensors, as model.fit takes them (iteration would copy numpy data's to the host)
    loader = datagen.flow(
        images, labels, batch_size=batch_size, seed=0, resident=True, output="torch"
    )
    return lambda: next(loader)


def keras_layers_runner(images, labels, batch_size, device, pipeline_name):
    import keras

    side = images.shape[1]
    if pipeline_name == "randaugment":
        layers = keras.layers.RandAugment(value_range=(0, 255), num_ops=2)
    elif pipeline_name == "geometric":
        layers = keras.Sequential([
            keras.layers.ZeroPadding2D(side // 8), keras.layers.RandomCrop(side, side),
            keras.layers.RandomPerspective(factor=0.5, scale=0.3),
        ])  # fmt: skip
    else:
        layers = keras.Sequential([
            keras.layers.RandomContrast(0.4), keras.layers.RandomSaturation(0.4),
            keras.layers.RandomHue(0.1), keras.layers.RandomSharpness(0.5),
            keras.layers.Solarization(threshold_factor=0.5),
            keras.layers.RandomPosterization(4),
        ])  # fmt: skip
    mixup = keras.layers.MixUp(alpha=0.2)
    x = torch.as_tensor(images, device=device).float()
    y = torch.nn.functional.one_hot(torch.as_tensor(labels, device=device), CLASSES).float()
    batches = _cycle(len(x), batch_size)

    def run():
        part = next(batches)
        out = layers(x[part], training=True)
        return mixup({"images": out, "labels": y[part]}, training=True)

    return run


class _PerImage(torch.utils.data.Dataset):
    def __init__(self, images, labels, transform):
        self.images = torch.as_tensor(images).permute(0, 3, 1, 2)  # uint8 CHW
        self.labels, self.transform = torch.as_tensor(labels), transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        return self.transform(self.images[index]), self.labels[index]


def torchvision_runner(images, labels, batch_size, device, pipeline_name):
    from torchvision.transforms import v2

    side = images.shape[1]
    if pipeline_name == "randaugment":
        per_image = v2.RandAugment(num_ops=2, magnitude=9)
    elif pipeline_name == "geometric":
        per_image = v2.Compose([
            v2.RandomCrop(side, padding=side // 8), v2.RandomPerspective(0.3, p=0.5),
        ])  # fmt: skip
    else:
        per_image = v2.Compose([
            v2.ColorJitter(contrast=0.4, saturation=0.4, hue=0.1),
            v2.RandomAdjustSharpness(1.5, p=0.5), v2.RandomSolarize(128, p=0.2),
            v2.RandomPosterize(4, p=0.2),
        ])  # fmt: skip
    mixup = v2.MixUp(alpha=0.2, num_classes=CLASSES)
    loader = torch.utils.data.DataLoader(
        _PerImage(images, labels, per_image), batch_size=batch_size, shuffle=True,
        num_workers=os.cpu_count() or 1, persistent_workers=True, drop_last=True,
    )  # fmt: skip
    state = {"iterator": iter(loader)}

    def run():
        try:
            x, y = next(state["iterator"])
        except StopIteration:
            state["iterator"] = iter(loader)
            x, y = next(state["iterator"])
        return mixup(x.to(device).float(), y.to(device))

    return run


def kornia_runner(images, labels, batch_size, device, pipeline_name):
    import kornia.augmentation as K

    side = images.shape[1]
    if pipeline_name == "randaugment":
        augment = K.auto.RandAugment(n=2, m=9)
    elif pipeline_name == "geometric":
        augment = K.AugmentationSequential(
            K.RandomCrop((side, side), padding=side // 8), K.RandomPerspective(0.3, p=0.5),
        )  # fmt: skip
    else:
        augment = K.AugmentationSequential(
            K.ColorJitter(contrast=0.4, saturation=0.4, hue=0.1, p=1.0),
            K.RandomSharpness(0.5, p=0.5), K.RandomSolarize(0.0, 0.0, p=0.2),
            K.RandomPosterize(4, p=0.2),
        )  # fmt: skip
    mixup = K.RandomMixUpV2(data_keys=["input", "class"])
    x = torch.as_tensor(images, device=device).permute(0, 3, 1, 2).float() / 255
    y = torch.as_tensor(labels, device=device)
    batches = _cycle(len(x), batch_size)

    def run():
        part = next(batches)
        return mixup(augment(x[part]), y[part])

    return run


def _cycle(count, batch_size):
    while True:
        for start in range(0, count - batch_size + 1, batch_size):
            yield slice(start, start + batch_size)


RUNNERS = {
    "kaug": kaug_runner,
    "keras layers": keras_layers_runner,
    "torchvision v2": torchvision_runner,
    "kornia": kornia_runner,
}


def measure(pipeline_name, size, names, args, device, repeats, seconds):
    """One row: images/s of every library for `pipeline_name` at `size`, printed."""
    batch_size = 8 if args.smoke else (128 if size[0] <= 64 else 32)
    images, labels = rgb_images(size, max(8 * batch_size, 64), args.data)
    row = measure_row(
        lambda name: RUNNERS[name](images, labels, batch_size, device, pipeline_name),
        names, "x".join(map(str, size)), batch_size, device, repeats, seconds,
    )  # fmt: skip
    if row.get("kaug"):
        ratios = ", ".join(
            f"{n} {row['kaug'] / v:.1f}x" for n, v in row.items() if n != "kaug" and v
        )
        print(f"{'':>19s} kaug vs {ratios}")
    return {"pipeline": pipeline_name, "size": list(size), "batch_size": batch_size,
            "images_per_second": row}  # fmt: skip


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--data", default=default_data())
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--pipelines", nargs="*", default=["randaugment", "colour", "geometric"])
    parser.add_argument("--json", default="catalogue_throughput.json")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few batches (CI)")
    args = parser.parse_args()
    device = torch.device(args.device)
    sizes = [(32, 32, 3), (224, 224, 3)]
    repeats, seconds = args.repeats, args.seconds
    if args.smoke:
        sizes, repeats, seconds = [(32, 32, 3)], 1, 0.01
    names = args.only or list(RUNNERS)
    print(f"device {device}; {machine(device)}")
    print(f"{'size':>12s} {'batch':>6s} " + "".join(f"{name:>16s}" for name in names))
    results = []
    for pipeline_name in args.pipelines:
        print(f"-- {pipeline_name} + MixUp")
        for size in sizes:
            results.append(measure(pipeline_name, size, names, args, device, repeats, seconds))
    write_report(
        args.json, "RandAugment, colour and geometric pipelines + MixUp throughput", device,
        {"repeats": repeats, "min_seconds_per_pass": seconds, "smoke": args.smoke}, results,
    )  # fmt: skip


if __name__ == "__main__":
    main()
