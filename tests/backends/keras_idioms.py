"""Run by tests/test_keras_idioms.py in a fresh process: KERAS_BACKEND picks the backend.

Every kind of loader through `model.fit`, `evaluate` and `predict`, plus
`fit(class_weight=)` and a `steps_per_epoch` beyond one epoch; writes what Keras
returned (losses, prediction shapes, the warnings it printed) as JSON to the file
its third argument names.
"""

import json
import pathlib
import sys
import warnings

import keras
import numpy as np
import pandas as pd
from PIL import Image

from kaug import ImageDataGenerator

mnist_path, folder, report_path = (pathlib.Path(arg) for arg in sys.argv[1:4])
with np.load(mnist_path) as data:
    digits, labels = data["x_train"][:64], data["y_train"][:64] % 2  # two classes
x = digits[:, :, :, None].astype("float32")
rows = []
for i, (image, label) in enumerate(zip(digits, labels, strict=True)):
    (folder / str(label)).mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(folder / str(label) / f"{i}.png")
    rows.append({"filename": f"{label}/{i}.png", "class": str(label), "value": float(label)})
frame = pd.DataFrame(rows)

keras.utils.set_random_seed(0)
datagen = ImageDataGenerator(rotation_range=10, rescale=1 / 255)


def model_for(output):
    """A tiny model whose head fits the targets: "softmax" (categorical or sparse),
    "sigmoid" (binary), "linear" (raw) or "image" (class_mode "input")."""
    inputs = keras.Input((28, 28, 1))
    if output == "image":
        outputs = keras.layers.Conv2D(1, 3, padding="same")(inputs)
    else:
        hidden = keras.layers.Flatten()(keras.layers.AveragePooling2D(4)(inputs))
        units = {"softmax": 2, "sigmoid": 1, "linear": 1}[output]
        outputs = keras.layers.Dense(units, activation=output)(hidden)
    return keras.Model(inputs, outputs)


LOSSES = {
    ("softmax", "sparse"): "sparse_categorical_crossentropy",
    ("softmax", "categorical"): "categorical_crossentropy",
    ("sigmoid", "binary"): "binary_crossentropy",
    ("linear", "raw"): "mse",
    ("image", "input"): "mse",
}


def loaders():
    """(name, loader, output, target kind or None) for every kind of loader."""
    weights = np.linspace(0.5, 1.5, len(x))
    yield "flow x", datagen.flow(x, batch_size=10, shuffle=False), "softmax", None
    yield "flow x y", datagen.flow(x, labels, batch_size=10), "softmax", "sparse"
    yield (
        "flow x y w",
        datagen.flow(x, labels, sample_weight=weights, batch_size=10),
        "softmax",
        "sparse",
    )
    for mode, output in [("categorical", "softmax"), ("binary", "sigmoid"),
                         ("sparse", "softmax"), ("input", "image"), (None, "softmax")]:  # fmt: skip
        loader = datagen.flow_from_directory(
            folder, target_size=(28, 28), color_mode="grayscale", class_mode=mode,
            batch_size=10, shuffle=mode is not None, num_workers=0,
        )  # fmt: skip
        yield f"directory {mode}", loader, output, mode
    for mode, output in [("categorical", "softmax"), ("binary", "sigmoid"), ("sparse", "softmax"),
                         ("raw", "linear"), ("input", "image"), (None, "softmax")]:  # fmt: skip
        loader = datagen.flow_from_dataframe(
            frame, folder, y_col="value" if mode == "raw" else "class", target_size=(28, 28),
            color_mode="grayscale", class_mode=mode, batch_size=10,
            shuffle=mode is not None, num_workers=0,
        )  # fmt: skip
        yield f"dataframe {mode}", loader, output, mode


report = {"backend": keras.backend.backend(), "cases": {}}
for name, loader, output, target in loaders():
    model = model_for(output)
    case = {"batches": len(loader)}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        if target is not None:
            model.compile("adam", LOSSES[output, target])
            history = model.fit(loader, epochs=2, verbose=0)
            case["fit"] = history.history["loss"]
            case["evaluate"] = float(model.evaluate(loader, verbose=0))
        predictions = model.predict(loader, verbose=0)
    case["predict"] = list(predictions.shape)
    case["warnings"] = [str(w.message) for w in caught if w.category is UserWarning]
    report["cases"][name] = case

# class_weight in model.fit: the same epoch as sample weights of the same values.
weights = {0: 0.25, 1: 4.0}
per_sample = np.where(labels == 1, 4.0, 0.25)
losses = []
for kwargs, sample_weight in [({"class_weight": weights}, None), ({}, per_sample)]:
    keras.utils.set_random_seed(1)
    model = model_for("softmax")
    model.compile("sgd", "sparse_categorical_crossentropy")
    loader = datagen.flow(
        x, labels, sample_weight=sample_weight, batch_size=16, shuffle=False, augment=False
    )
    losses.append(model.fit(loader, epochs=1, verbose=0, **kwargs).history["loss"][0])
report["class_weight_loss"], report["sample_weight_loss"] = losses

# steps_per_epoch beyond one epoch (64 images, 7 batches of 10): no "ran out of data".
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always", UserWarning)
    model = model_for("softmax")
    model.compile("adam", "sparse_categorical_crossentropy")
    history = model.fit(datagen.flow(x, labels, batch_size=10), epochs=2, steps_per_epoch=15,
                        verbose=0)  # fmt: skip
report["long_epochs"] = {
    "epochs": len(history.history["loss"]),
    "warnings": [str(w.message) for w in caught if w.category is UserWarning],
}
report_path.write_text(json.dumps(report))
