"""Tour 1: plot the first nine training digits (the tutorial's first code block).

The tutorial's code as written; only the imports changed (see tour.py): the data
come from `--data`/$KAUG_MNIST or kaug's built-in sample, and the grid is written
to out/tour_1_first_nine.png.
"""

# Plot images
from tour import mnist, pyplot

# load data
(X_train, y_train), (X_test, y_test) = mnist.load_data()
# create a grid of 3x3 images
for i in range(0, 9):
    pyplot.subplot(330 + 1 + i)
    pyplot.imshow(X_train[i], cmap=pyplot.get_cmap("gray"))
# show the plot
pyplot.show()
