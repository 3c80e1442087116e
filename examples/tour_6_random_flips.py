"""Tour 6: random horizontal and vertical flips."""

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, _), _ = load_mnist(args.data)
datagen = ImageDataGenerator(horizontal_flip=True, vertical_flip=True)
batch = datagen.augment(x_train[:1000])
unchanged = (batch == x_train[:1000]).all(axis=(1, 2, 3)).mean()
path = f"{args.out}/tour_6_random_flips.png"
datagen.preview(x_train, n=9, path=path)
print(f"{unchanged:.0%} of 1000 digits left unflipped (expected about 25%); grid: {path}")
