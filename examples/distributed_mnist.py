"""Data-parallel training of a Keras model (torch backend) with torchrun and kaug.

    torchrun --nproc_per_node=2 examples/distributed_mnist.py [--data mnist.npz] [--epochs 2]

Each process (one per GPU, or per CPU slot with the gloo backend) gets its own
shard of every epoch from `datagen.flow`, `datagen.fit` sums the featurewise
statistics over all processes, and PyTorch's DistributedDataParallel averages
the gradients of the Keras model (a torch.nn.Module under the torch backend),
as in Keras's guide to multi-GPU training with PyTorch.
"""

import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import keras  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
from mnist_data import load_mnist, parse_args  # noqa: E402

from kaug import ImageDataGenerator  # noqa: E402


def logits_model():
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def main():
    args = parse_args(
        __doc__,
        epochs=(2, "epochs"),
        batch_size=(64, "images per batch and process"),
        limit=(0, "train on the first LIMIT images only (0: all)"),
    )
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    keras.utils.set_random_seed(0)  # the same initial weights on every rank

    (x_train, y_train), (x_test, y_test) = load_mnist(args.data)
    if args.limit:
        x_train, y_train = x_train[: args.limit], y_train[: args.limit]
    datagen = ImageDataGenerator(
        featurewise_center=True, featurewise_std_normalization=True, rescale=1 / 255,
        rotation_range=10, width_shift_range=0.1, height_shift_range=0.1, device=device,
    )  # fmt: skip
    datagen.fit(x_train)  # each rank sums its share; all end with the same statistics
    loader = datagen.flow(x_train, y_train, batch_size=args.batch_size)  # this rank's shard

    model = logits_model()
    ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device] if cuda else None)
    optimizer = torch.optim.Adam(ddp.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    report = {"rank": rank, "world_size": world, "epochs": []}
    for epoch in range(args.epochs):
        start, seen = time.perf_counter(), 0
        for x, y in loader.epoch():
            loss = loss_fn(ddp(x), y.long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            seen += len(x)
        print(f"rank {rank}/{world} epoch {epoch + 1}: {seen} images, loss {loss.item():.3f}, "
              f"{time.perf_counter() - start:.1f} s", flush=True)  # fmt: skip
        report["epochs"].append({"images": seen, "loss": loss.item()})

    if rank == 0:
        model.eval()
        with torch.no_grad():
            correct = sum(
                int((model(x).argmax(1) == y).sum())
                # Rank 0 alone: a single-process loader (all the data, no collective calls).
                for x, y in datagen.flow(
                    x_test, y_test, batch_size=512, augment=False, rank=0, world_size=1
                ).epoch()  # fmt: skip
            )
        print(f"test accuracy {correct / len(x_test):.4f} (mean {datagen.mean.ravel()[0]:.4f})")
        report["accuracy"] = correct / len(x_test)
    with open(f"{args.out}/distributed_rank{rank}.json", "w") as file:
        json.dump(report, file)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
