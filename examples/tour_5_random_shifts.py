"""Tour 5: random shifts of up to 20 % of the width and of the height."""

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, _), _ = load_mnist(args.data)
datagen = ImageDataGenerator(width_shift_range=0.2, height_shift_range=0.2)
shifts = [datagen.get_random_transform(x_train.shape[1:]) for _ in range(9)]
path = f"{args.out}/tour_5_random_shifts.png"
datagen.preview(x_train, n=9, path=path)
print("shifts drawn (columns, rows) in pixels:",
      [(round(p["tx"], 1), round(p["ty"], 1)) for p in shifts], f"; grid: {path}")  # fmt: skip
