"""The contract every batch transform follows."""


class BatchTransform:
    """A random augmentation of a whole (B, C, H, W) batch.

    Subclasses implement two methods and nothing else:

    - `sample(shape, generator)` draws every per-image parameter of the batch at
      once on `generator.device` and returns them as a dict of tensors;
    - `apply(x, params)` is pure: the same params give the same output, and the
      input is never modified.

    Calling the transform does both.
    """

    def sample(self, shape, generator):
        return {}

    def apply(self, x, params):
        raise NotImplementedError(f"{type(self).__name__} must implement apply(x, params)")

    def __call__(self, x, generator):
        return self.apply(x, self.sample(tuple(x.shape), generator))
