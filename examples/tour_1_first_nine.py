"""Tour 1: the first nine training digits, unchanged (the point of comparison)."""

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, y_train), _ = load_mnist(args.data)
path = f"{args.out}/tour_1_first_nine.png"
ImageDataGenerator().preview(x_train, n=9, path=path)  # no arguments: no change
print(f"first nine labels: {y_train[:9].tolist()}; grid: {path}")
