"""The API boundary: devices, numpy/torch conversion, copies only where needed."""

import numpy as np
import pytest
import torch

from kaug._tensors import as_tensor, from_nchw, resolve_device, to_nchw


def test_devices_are_checked():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type == ("cuda" if torch.cuda.is_available() else "cpu")
    for bad in ("toaster", "meta", 3, torch.zeros(1)):
        with pytest.raises(ValueError, match="Received: device="):
            resolve_device(bad)


def test_shares_memory_unless_asked_to_copy():
    array = np.arange(24, dtype="float32").reshape(2, 3, 4, 1)
    shared = as_tensor(array, "cpu")
    assert np.shares_memory(shared.numpy(), array)
    copied = as_tensor(array, "cpu", copy=True)
    copied += 1
    assert array[0, 0, 0, 0] == 0
    tensor = torch.from_numpy(array.copy())
    assert as_tensor(tensor, "cpu") is tensor
    assert as_tensor(tensor, "cpu", copy=True).data_ptr() != tensor.data_ptr()


@pytest.mark.parametrize(
    "make",
    [
        lambda a: np.flip(a, 1),
        lambda a: a.astype(">f4"),
        lambda a: a.astype("uint16"),
        lambda a: np.lib.stride_tricks.as_strided(a, writeable=False),
    ],  # fmt: skip
)
def test_arrays_torch_cannot_view_are_copied_into_a_form_it_takes(make):
    array = make(np.arange(24, dtype="float32").reshape(2, 3, 4, 1))
    tensor = as_tensor(array, "cpu")
    np.testing.assert_array_equal(tensor.numpy(), array)


def test_layouts_round_trip():
    x = torch.arange(24.0).reshape(2, 3, 4, 1)
    assert torch.equal(from_nchw(to_nchw(x, "channels_last"), "channels_last"), x)
    assert to_nchw(x, "channels_last").shape == (2, 1, 3, 4)
    assert to_nchw(x, "channels_first") is x
