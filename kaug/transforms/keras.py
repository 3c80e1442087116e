"""The augmentation of Keras's ImageDataGenerator as one batch transform.

Its parameters are Keras's `transform_parameters` keys, one value per image:
theta, tx, ty, shear, zx, zy, flip_horizontal, flip_vertical,
channel_shift_intensity, brightness. A key that is absent is an operation that
does not run, which is how the batch path skips what the configuration leaves
off and how `apply_transform` skips what a parameters dict leaves at identity.
"""

import numbers

import numpy as np
import torch

from kaug import functional as F
from kaug._checks import (
    check_bool,
    check_choice,
    check_number,
    check_pair,
    check_shift_range,
    invalid,
    is_number,
    scalar,
)
from kaug.sampling import uniform
from kaug.transforms.base import BatchTransform, register_transform

GEOMETRIC_DEFAULTS = {"theta": 0.0, "tx": 0.0, "ty": 0.0, "shear": 0.0, "zx": 1.0, "zy": 1.0}
FLIP_KEYS = ("flip_horizontal", "flip_vertical")
PHOTOMETRIC_KEYS = ("channel_shift_intensity", "brightness")


class _ShiftRange:
    """Keras's shift forms, resolved once: uniform draws or signed choices."""

    def __init__(self, name, value):
        value = self.value = check_shift_range(name, value)
        # Keras skips a range that is falsy (0, 0.0); any other draws, zeros included.
        self.active = bool(np.any(np.asarray(value) != 0))
        if isinstance(value, list):
            self.choices = np.asarray(value, dtype=np.float64)
        elif isinstance(value, numbers.Integral):
            self.choices = np.arange(max(value, 1), dtype=np.float64)  # np.random.choice(int)
        else:
            self.choices = None
        self.limit = float(np.max(value))
        self.fraction = self.limit < 1  # a fraction of the image size, else pixels
        self._on_device = {}  # uploaded once per device: an upload syncs the host

    def draw(self, u_value, u_sign, size, device):
        if self.choices is None:
            shift = (2 * u_value - 1) * self.limit
        else:
            key = (device, u_value.dtype)
            if key not in self._on_device:
                self._on_device[key] = torch.as_tensor(self.choices, dtype=key[1], device=device)
            choices = self._on_device[key]
            index = torch.clamp((u_value * len(choices)).long(), max=len(choices) - 1)
            shift = choices[index] * torch.where(u_sign < 0.5, -1.0, 1.0)
        return shift * size if self.fraction else shift


_DTYPES = {"float32": torch.float32, "float64": torch.float64}


@register_transform
class KerasAugmentation(BatchTransform):
    """Rotation, shift, shear, zoom, flips, channel shift and brightness, as Keras.

    The geometric part (flips included) is one affine warp per batch; channel
    shift and brightness follow, in Keras's order. Width shifts move images along
    the columns and height shifts along the rows (Keras swaps them), and the
    rotation centre is the true centre of non-square images. The stage an
    ImageDataGenerator runs, usable alone on a (B, C, H, W) batch too.

    The arithmetic runs in the wider of the images' dtype and `dtype`; floating
    images come back in their own dtype (float16 and bfloat16 included), integer
    ones in `dtype`.

    Args:
        rotation_range: degrees; angles are drawn from [-range, range].
        width_shift_range: float (fraction of the width if < 1, else pixels),
            int (pixels drawn from range(n) with a random sign) or a list of
            choices (with a random sign).
        height_shift_range: the same for the rows.
        shear_range: degrees, counter-clockwise.
        zoom_range: float z for [1 - z, 1 + z], or [lower, upper].
        channel_shift_range: offsets drawn from [-range, range].
        brightness_range: None or [lower, upper] factors.
        horizontal_flip: flip half of the images left to right.
        vertical_flip: flip half of the images upside down.
        fill_mode: "constant", "nearest", "reflect" or "wrap".
        cval: fill value for "constant".
        interpolation_order: 0 (nearest) or 1 (bilinear).
        dtype: "float32" or "float64" (or the torch dtype): the least precision
            the arithmetic runs in.
        p: probability of augmenting each image (the others pass unchanged).
    """

    def __init__(
        self,
        rotation_range=0.0,
        width_shift_range=0.0,
        height_shift_range=0.0,
        shear_range=0.0,
        zoom_range=0.0,
        channel_shift_range=0.0,
        brightness_range=None,
        horizontal_flip=False,
        vertical_flip=False,
        fill_mode="nearest",
        cval=0.0,
        interpolation_order=1,
        dtype="float32",
        p=1.0,
    ):
        super().__init__(p=p)
        self.rotation_range = check_number("rotation_range", rotation_range, minimum=0)
        zoom_range = scalar(zoom_range)
        self._width_shift = _ShiftRange("width_shift_range", width_shift_range)
        self._height_shift = _ShiftRange("height_shift_range", height_shift_range)
        self.width_shift_range = self._width_shift.value
        self.height_shift_range = self._height_shift.value
        self.shear_range = check_number("shear_range", shear_range, minimum=0)
        if is_number(zoom_range):
            zoom_range = check_number("zoom_range", zoom_range, minimum=0)
            zoom_range = [1 - zoom_range, 1 + zoom_range]
        self.zoom_range = list(check_pair("zoom_range", zoom_range, minimum=0))
        self.channel_shift_range = check_number(
            "channel_shift_range", channel_shift_range, minimum=0
        )
        self.brightness_range = (
            None
            if brightness_range is None
            else list(check_pair("brightness_range", brightness_range, minimum=0))
        )
        self.horizontal_flip = check_bool("horizontal_flip", horizontal_flip)
        self.vertical_flip = check_bool("vertical_flip", vertical_flip)
        self.fill_mode = check_choice("fill_mode", fill_mode, F.geometric.FILL_MODES)
        self.cval = check_number("cval", cval)
        interpolation_order = scalar(interpolation_order)
        if (
            isinstance(interpolation_order, bool)
            or not isinstance(interpolation_order, numbers.Integral)
            or interpolation_order not in (0, 1)
        ):
            raise invalid(
                "interpolation_order", interpolation_order, "must be 0 (nearest) or 1 (bilinear)"
            )
        self.interpolation_order = int(interpolation_order)
        name = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
        self.dtype = check_choice("dtype", name, tuple(_DTYPES))
        self._dtype = _DTYPES[self.dtype]
        self._zooms = self.zoom_range != [1.0, 1.0]
        self._warps = bool(
            self.rotation_range
            or self._width_shift.active
            or self._height_shift.active
            or self.shear_range
            or self._zooms
        )

    @property
    def is_identity(self):
        """True when sampling can only ever produce the identity transform."""
        return self.p == 0 or not (
            self._warps
            or self.horizontal_flip
            or self.vertical_flip
            or self.channel_shift_range
            or self.brightness_range is not None
        )

    def sample(self, shape, generator):
        """Keras's `get_random_transform` for a whole batch, drawn in one call."""
        batch, _, height, width = shape
        u = iter(uniform((12, batch), generator))
        params = {}
        if self._warps:
            zeros = torch.zeros(batch, device=generator.device)
            params["theta"] = (2 * next(u) - 1) * self.rotation_range
            params["tx"] = self._width_shift.draw(next(u), next(u), width, generator.device)
            params["ty"] = self._height_shift.draw(next(u), next(u), height, generator.device)
            params["shear"] = (2 * next(u) - 1) * self.shear_range
            if self._zooms:
                low, high = self.zoom_range
                params["zx"] = low + (high - low) * next(u)
                params["zy"] = low + (high - low) * next(u)
            else:
                params["zx"] = params["zy"] = zeros + 1
        if self.horizontal_flip:
            params["flip_horizontal"] = next(u) < 0.5
        if self.vertical_flip:
            params["flip_vertical"] = next(u) < 0.5
        if self.channel_shift_range:
            params["channel_shift_intensity"] = (2 * next(u) - 1) * self.channel_shift_range
        if self.brightness_range is not None:
            low, high = self.brightness_range
            params["brightness"] = low + (high - low) * next(u)
        return params

    def apply(self, x, params):
        """Keras's `apply_transform` on a batch: warp, channel shift, brightness."""
        dtype = x.dtype if x.is_floating_point() else self._dtype
        x = self._geometric(x, params)
        if "channel_shift_intensity" in params:
            x = F.channel_shift(x, params["channel_shift_intensity"])
        if "brightness" in params:
            x = F.brightness(x, params["brightness"])
        return x.to(dtype)

    writes = ("images", "masks", "boxes", "keypoints")
    moves_pixels = True

    def apply_batch(self, batch, params):
        """The images augmented, and the masks (`apply_to_masks`), boxes and keypoints
        moved with them."""
        masks = batch.masks
        if masks is not None:
            masks = self.apply_to_masks(masks, params, self._points_dtype(batch.images))
        batch = batch.replace(images=self.apply(batch.images, params), masks=masks)
        if "theta" not in params and not any(key in params for key in FLIP_KEYS):
            return batch  # nothing moved
        height, width = batch.images.shape[2:]
        inverse = F.geometric.invert_affine(self.matrix(params, height, width))

        def step(x, y):
            return F.geometric.affine_points(x, y, inverse)

        return batch.moved_targets(step, height, width)

    def apply_to_masks(self, masks, params, dtype=torch.float32):
        """The geometric part of `params` on label masks: nearest sampling, 0 outside.

        Masks keep their dtype and every value (gathered, never interpolated nor
        rounded through a float), and no photometric change, so they stay aligned
        with the images `params` transformed. `dtype` is the images' points' dtype.
        """
        if "theta" in params:
            matrix = self.matrix(params, *masks.shape[2:])
            return F.geometric.warp_labels(masks, matrix, self.fill_mode, dtype)
        return F.flip(masks, *(params.get(key) for key in FLIP_KEYS))

    def _points_dtype(self, x):
        """The dtype the warp computes in for images `x`."""
        return torch.promote_types(x.dtype, self._dtype) if x.is_floating_point() else self._dtype

    def _geometric(self, x, params):
        flips = [params.get(key) for key in FLIP_KEYS]
        dtype = self._points_dtype(x)
        if "theta" not in params:
            return F.flip(x.to(dtype), *flips)
        # grid_sample reads (B, C, H, W)-contiguous input fastest; the dtype
        # conversion makes the copy in passing.
        x = x.to(dtype, memory_format=torch.contiguous_format)
        matrix = self.matrix(params, *x.shape[2:])
        return F.warp(x, matrix, self.fill_mode, self.cval, self.interpolation_order)

    @property
    def is_geometric_only(self):
        """True when the stage only moves pixels (no channel shift, no brightness): it
        can then join a run of geometric transforms as one resampling."""
        return not self.channel_shift_range and self.brightness_range is None

    def matrix(self, params, height, width):
        """(B, 2, 3) output-to-input maps of the drawn rotation, shift, shear, zoom and
        flips (the identity where `params`, non-empty, leaves them out)."""
        drawn = next(iter(params.values()))
        no_flip = torch.zeros(drawn.shape[0], dtype=torch.bool, device=drawn.device)
        flips = [params.get(key, no_flip) for key in FLIP_KEYS]
        if "theta" in params:
            geometric = [params[key] for key in GEOMETRIC_DEFAULTS]
        else:
            zeros = torch.zeros(drawn.shape[0], device=drawn.device)
            geometric = [zeros + default for default in GEOMETRIC_DEFAULTS.values()]
        return F.keras_affine_matrix(*geometric, *flips, height=height, width=width)

    @staticmethod
    def params_from_keras(transform_parameters, device):
        """A Keras `transform_parameters` dict as batch-of-one params.

        Like Keras, only the operations whose values differ from the identity run;
        keys Keras does not know are ignored, as Keras does.
        """
        if not isinstance(transform_parameters, dict):
            raise invalid(
                "transform_parameters", transform_parameters, "must be a dict of Keras's keys"
            )
        given = dict(transform_parameters)
        for key in (*GEOMETRIC_DEFAULTS, *PHOTOMETRIC_KEYS):
            if given.get(key) is not None:
                given[key] = check_number(f"transform_parameters['{key}']", given[key])
        params = {}
        geometric = {
            key: float(default if given.get(key) is None else given[key])
            for key, default in GEOMETRIC_DEFAULTS.items()
        }
        if geometric != GEOMETRIC_DEFAULTS:
            params.update({k: torch.tensor([v], device=device) for k, v in geometric.items()})
        for key in FLIP_KEYS:
            if given.get(key, False):
                params[key] = torch.ones(1, dtype=torch.bool, device=device)
        for key in PHOTOMETRIC_KEYS:
            if given.get(key) is not None:
                params[key] = torch.tensor([float(given[key])], device=device)
        return params

    @staticmethod
    def params_to_keras(params):
        """Batch-of-one params as the dict Keras's `get_random_transform` returns."""
        values = {key: value.item() for key, value in params.items()}
        keras_params = {
            key: values.get(key, default) for key, default in GEOMETRIC_DEFAULTS.items()
        }
        keras_params.update({key: bool(values.get(key, False)) for key in FLIP_KEYS})
        keras_params.update({key: values.get(key) for key in PHOTOMETRIC_KEYS})
        return keras_params
