"""Tour 7: save the augmented images to a folder as they are served.

The tutorial's code block as written; only the imports changed (kaug's
ImageDataGenerator; the data and the plotting of tour.py), and `exist_ok=True`
lets the tour run twice. The nine images of the batch are written to ./images
(aug_*.png, in the background; all written before the script ends) and
shown in out/tour_7_save_to_dir.png.
"""

# Save augmented images to file
import os

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
datagen = ImageDataGenerator()
# fit parameters from data
datagen.fit(X_train)
# configure batch size and retrieve one batch of images
os.makedirs("images", exist_ok=True)
for X_batch, y_batch in datagen.flow(X_train, y_train, batch_size=9, save_to_dir="images",
                                     save_prefix="aug", save_format="png"):
    # create a grid of 3x3 images
    for i in range(0, 9):
        pyplot.subplot(330 + 1 + i)
        pyplot.imshow(X_batch[i].reshape(28, 28), cmap=pyplot.get_cmap("gray"))
    # show the plot
    pyplot.show()
    break
