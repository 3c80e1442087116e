"""A kornia.augmentation module in `ImageDataGenerator(transforms=[...])`.

`transforms=[kornia.augmentation.RandomGaussianBlur((5, 5), (0.1, 2.0), p=0.5)]` is
wrapped in `KorniaTransform`: the module runs on the whole batch, its random draws
seeded from kaug's generator (so kaug's `seed` repeats them), and a geometric module
moves the masks with the images (kornia's own mask handling, nearest, moves each
pixel's index, and the masks are gathered from those: exact labels of any width;
photometric modules leave masks alone). kornia draws from torch's global RNG, so each batch
forks it: one host sync per batch, where kaug's own transforms need none.
"""

import torch

from kaug.batch import Batch
from kaug.functional.geometric import gather_planes, index_planes, projective_points
from kaug.transforms.base import BatchTransform


def is_kornia_module(item):
    """Whether `item` is a kornia.augmentation module (checked without importing kornia)."""
    return isinstance(item, torch.nn.Module) and type(item).__module__.startswith(
        "kornia.augmentation"
    )


class KorniaTransform(BatchTransform):
    """Run a kornia.augmentation module on a batch, reproducibly under kaug's seed.

    Args:
        module: a kornia.augmentation module (its own `p` applies per image).

    Not registered, as a module has no JSON config: `get_config` and `save` of a
    generator holding one raise a ValueError naming it.
    """

    def __init__(self, module):
        super().__init__(p=1.0)
        if not is_kornia_module(module):
            from kaug._checks import invalid

            raise invalid("module", module, "must be a kornia.augmentation module")
        import kornia.augmentation as K
        from kornia.augmentation._2d.geometric.base import GeometricAugmentationBase2D

        self.module = module
        self._with_masks = K.AugmentationSequential(module, data_keys=["input", "mask"])
        # A geometric module moves pixels: masks follow (kornia's own mask handling);
        # boxes and keypoints follow its transform matrix, where it has one (an
        # elastic or thin-plate-spline module has none: batches with them are refused).
        self.moves_pixels = ".geometric." in type(module).__module__
        self.writes = ("images", "masks")
        if isinstance(module, GeometricAugmentationBase2D):
            self.writes += ("boxes", "keypoints")

    def sample(self, shape, generator):
        seed = torch.randint(0, 2**62, (1,), generator=generator, device=generator.device)
        return {"seed": seed.expand(shape[0])}

    def apply_batch(self, batch, params):
        x, masks = batch.images, batch.masks
        if x.shape[0] == 0:
            return batch
        devices = [x.device] if x.device.type == "cuda" else []
        work = x if x.dtype in (torch.float32, torch.float64) else x.float()
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(params["seed"][0]))
            if masks is None:
                out = self.module(work)
            else:
                # kornia moves the pixel indices (`index_planes`) as masks; the masks are
                # gathered from them, so labels of any width keep every value.
                planes = index_planes(*masks.shape[:1], *masks.shape[2:], x.device)
                out, moved = self._with_masks(work, planes.to(work.dtype))
                masks = gather_planes(masks, moved)
        batch = batch.replace(images=out.to(x.dtype), masks=masks)
        if self.moves_pixels and (batch.boxes is not None or batch.keypoints is not None):
            # kornia's matrix maps input pixel centres to output ones (projective).
            matrix = self.module.transform_matrix.to(x.device, torch.float64)

            def step(px, py):
                return projective_points(px, py, matrix)

            batch = batch.moved_targets(step, *out.shape[2:])
        return batch

    def apply(self, x, params):
        return self.apply_batch(Batch(x), params).images

    def __repr__(self):
        return f"KorniaTransform({self.module!r})"
