"""Tour 4: random rotations of up to 90 degrees."""

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__)
(x_train, _), _ = load_mnist(args.data)
datagen = ImageDataGenerator(rotation_range=90)
angles = [datagen.get_random_transform(x_train.shape[1:])["theta"] for _ in range(9)]
path = f"{args.out}/tour_4_random_rotation.png"
datagen.preview(x_train, n=9, path=path)
print(f"angles drawn for nine digits: {[round(a) for a in angles]}; grid: {path}")
