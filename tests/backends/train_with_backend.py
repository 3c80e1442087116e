"""Run by tests/test_backends.py in a fresh process: KERAS_BACKEND picks the backend.

Trains a small CNN through model.fit from datagen.flow and from
flow_from_directory, and writes the backend, the batch dtypes Keras saw and the
test accuracy as JSON to the file its third argument names.
"""

import json
import pathlib
import sys

import keras
import numpy as np
from PIL import Image

from kaug import ImageDataGenerator

mnist_path, folder, report = (pathlib.Path(arg) for arg in sys.argv[1:4])
with np.load(mnist_path) as data:
    x, y = data["x_train"][:3000, :, :, None], data["y_train"][:3000]
    x_test, y_test = data["x_test"][:1000, :, :, None], data["y_test"][:1000]
for i, (image, label) in enumerate(zip(x[:600, :, :, 0], y[:600], strict=True)):
    (folder / str(label)).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / str(label) / f"{i}.png")

keras.utils.set_random_seed(0)
datagen = ImageDataGenerator(rotation_range=10, width_shift_range=0.1, rescale=1 / 255)
model = keras.Sequential([
    keras.Input((28, 28, 1)), keras.layers.Conv2D(16, 3, activation="relu"),
    keras.layers.MaxPooling2D(), keras.layers.Flatten(),
    keras.layers.Dense(10, activation="softmax"),
])  # fmt: skip
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.fit(datagen.flow(x, y, batch_size=64, seed=0), epochs=2, verbose=0)
files = datagen.flow_from_directory(folder, target_size=(28, 28), color_mode="grayscale",
                                    class_mode="sparse", batch_size=64, num_workers=0)  # fmt: skip
model.fit(files, epochs=1, verbose=0)
tensorflow_imported = "tensorflow" in sys.modules  # even the torch backend's seeding does
try:  # decodes on the device: refused, not a crash, where torchvision cannot be imported
    next(iter(datagen.flow_from_directory(folder, target_size=(28, 28), decoder="torchvision")))
    torchvision_decoder = "ok"
except ValueError as error:
    assert "Received: decoder='torchvision'" in str(error), error
    torchvision_decoder = "refused"
batch_x, batch_y = next(datagen.flow(x, y, batch_size=8).epoch())  # the tensors Keras reads
numpy_x, _ = next(datagen.flow(x, y, batch_size=8))  # what user code iterating it gets
_, accuracy = model.evaluate(datagen.flow(x_test, y_test, augment=False), verbose=0)
report.write_text(json.dumps({
    "backend": keras.backend.backend(), "accuracy": float(accuracy),
    "x_contiguous": bool(batch_x.is_contiguous()), "x_dtype": str(batch_x.dtype),
    "x_shape": list(batch_x.shape), "torchvision_decoder": torchvision_decoder,
    "tensorflow_imported": tensorflow_imported, "served_to_user": type(numpy_x).__module__,
}))  # fmt: skip
