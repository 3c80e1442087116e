"""Tour 2: featurewise standardization (mean and std fitted on the training set)."""

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, y_train), _ = load_mnist(args.data)
datagen = ImageDataGenerator(featurewise_center=True, featurewise_std_normalization=True)
datagen.fit(x_train)
x_batch, y_batch = next(iter(datagen.flow(x_train, y_train, batch_size=256)))
path = f"{args.out}/tour_2_featurewise_standardization.png"
datagen.preview(x_train, n=9, path=path)
print(f"fitted mean {datagen.mean.ravel()[0]:.2f}, std {datagen.std.ravel()[0]:.2f} on "
      f"{len(x_train)} digits; a standardized batch has mean {x_batch.mean():.3f} and "
      f"std {x_batch.std():.3f}; grid: {path}")  # fmt: skip
