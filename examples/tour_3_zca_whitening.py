"""Tour 3: ZCA whitening (the whitening matrix fitted on the training set)."""

import time

from mnist_data import load_mnist, parse_args

from kaug import ImageDataGenerator

args = parse_args(__doc__, epsilon=(0.1, "zca_epsilon (Keras's default 1e-6 is ill-conditioned)"))
(x_train, y_train), _ = load_mnist(args.data)
datagen = ImageDataGenerator(zca_whitening=True, zca_epsilon=args.epsilon, rescale=1 / 255)
start = time.perf_counter()
datagen.fit(x_train)
seconds = time.perf_counter() - start
x_batch, _ = next(iter(datagen.flow(x_train, y_train, batch_size=256)))
path = f"{args.out}/tour_3_zca_whitening.png"
datagen.preview(x_train, n=9, path=path)
print(
    f"ZCA matrix {datagen.zca_whitening_matrix.shape} fitted on {len(x_train)} digits in "
    f"{seconds:.1f} s on {datagen.device}; whitened batch std {x_batch.std():.3f}; grid: {path}"
)
