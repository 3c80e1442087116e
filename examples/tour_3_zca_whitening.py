"""Tour 3: ZCA whitening, the picture of each digit's outlines.

The tutorial's code block as written; only the imports changed (kaug's
ImageDataGenerator; the data and the plotting of tour.py). kaug's ZCA is
regularised as in the tutorial's Keras (epsilon added to the covariance's
eigenvalues), so at the default zca_epsilon the whitened digits show their
outlines on a flat background; `zca_regularization="keras3"` gives Keras 3's form,
which turns MNIST's near-constant borders into noise. Grid:
out/tour_3_zca_whitening.png.
"""

# ZCA whitening
from tour import mnist, pyplot

from kaug import ImageDataGenerator

# load data
(X_train, y_train), (X_test, y_test) = mnist.load_data()
# reshape to be [samples][width][height][channels]
X_train = X_train.reshape((X_train.shape[0], 28, 28, 1))
X_test = X_test.reshape((X_test.shape[0], 28, 28, 1))
# convert from int to float
X_train = X_train.astype("float32")
X_test = X_test.astype("float32")
# define data preparation
datagen = ImageDataGenerator(zca_whitening=True)
# fit parameters from data
datagen.fit(X_train)
# configure batch size and retrieve one batch of images
for X_batch, y_batch in datagen.flow(X_train, y_train, batch_size=9):
    # create a grid of 3x3 images
    for i in range(0, 9):
        pyplot.subplot(330 + 1 + i)
        pyplot.imshow(X_batch[i].reshape(28, 28), cmap=pyplot.get_cmap("gray"))
    # show the plot
    pyplot.show()
    break
