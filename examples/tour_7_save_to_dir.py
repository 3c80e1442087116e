"""Tour 7: saving augmented images to a folder while they are served."""

import os

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, y_train), _ = load_mnist(args.data)
folder = f"{args.out}/tour_7_images"
datagen = ImageDataGenerator(rotation_range=20, width_shift_range=0.1, height_shift_range=0.1)
loader = datagen.flow(
    x_train[:27],
    y_train[:27],
    batch_size=9,
    save_to_dir=folder,
    save_prefix="aug",
    save_format="png",
)
served = sum(len(x_batch) for x_batch, y_batch in loader.epoch())  # one epoch: three batches of 9
path = f"{args.out}/tour_7_save_to_dir.png"
datagen.preview(x_train, n=9, path=path)
files = sorted(os.listdir(folder))
print(f"{served} images served, {len(files)} written to {folder} (e.g. {files[0]}); grid: {path}")
