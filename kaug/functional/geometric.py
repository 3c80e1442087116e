"""Geometric batch kernels: Keras's affine matrix and one warp for the whole batch.

Conventions (those of Keras's legacy `apply_affine_transform`, i.e. scipy's
`affine_transform`): a matrix maps OUTPUT pixel coordinates (x=column, y=row) to
the INPUT coordinates sampled there; pixel centres sit at integers.
"""

import torch
import torch.nn.functional as F

FILL_MODES = ("constant", "nearest", "reflect", "wrap")


def keras_affine_matrix(
    theta, tx, ty, shear, zx, zy, flip_horizontal, flip_vertical, height, width
):
    """Per-image 2x3 matrices for Keras's rotation, shift, shear, zoom and flips.

    Keras composes R(theta) . T(tx, ty) . Shear(shear) . Zoom(zx, zy) about the
    image centre, then flips the result. A flip after the warp is a flip of the
    output coordinates before it, so both fold into the one matrix.

    Args:
        theta: (B,) rotation in degrees.
        tx: (B,) shift along the columns, in pixels (content moves by -tx).
        ty: (B,) shift along the rows, in pixels.
        shear: (B,) shear angle in degrees.
        zx: (B,) zoom factor of the columns (> 1 shrinks the content).
        zy: (B,) zoom factor of the rows.
        flip_horizontal: (B,) bool, mirror the columns of the result.
        flip_vertical: (B,) bool, mirror the rows of the result.
        height: image height; the centre is at ((width - 1) / 2, (height - 1) / 2).
        width: image width.

    Returns:
        (B, 2, 3) tensor in theta's dtype: input (x, y) = M @ (x_out, y_out, 1).
    """
    # The trigonometry runs in float64: float32's sin(pi) is -8.7e-8, enough to
    # push a border pixel of a 180-degree turn just outside the image (constant
    # fill then writes cval); float64's residual 1e-16 vanishes in the float32 grid.
    angles = torch.deg2rad(torch.stack([theta, theta + shear]).to(torch.float64))
    cos, sin = torch.cos(angles).to(theta.dtype), torch.sin(angles).to(theta.dtype)
    sign_x = torch.where(flip_horizontal, -1.0, 1.0)
    sign_y = torch.where(flip_vertical, -1.0, 1.0)
    # Linear part of R . S . Z in closed form, flips folded in; R . T is the shift.
    a = zx * cos[0] * sign_x
    b = -zy * sin[1] * sign_y
    c = zx * sin[0] * sign_x
    d = zy * cos[1] * sign_y
    ox, oy = (width - 1) / 2.0, (height - 1) / 2.0
    # x_in = L (x_out - o) + R t + o
    offset_x = cos[0] * tx - sin[0] * ty + ox - (a * ox + b * oy)
    offset_y = sin[0] * tx + cos[0] * ty + oy - (c * ox + d * oy)
    return torch.stack([a, b, offset_x, c, d, offset_y], -1).view(-1, 2, 3)


def _grid(matrix, height, width, dtype):
    """(B, H, W, 2) coordinates matrix @ (x, y, 1) for every output pixel.

    Built as the sum of a per-column and a per-row term: one output-sized pass,
    several times faster than `affine_grid`'s batched matmul.
    """
    matrix = matrix.to(dtype)  # no-op unless the data are float64
    device = matrix.device
    cols = torch.arange(width, device=device, dtype=dtype)
    rows = torch.arange(height, device=device, dtype=dtype)
    by_col = matrix[:, None, :, 0] * cols[None, :, None]  # (B, W, 2)
    by_row = matrix[:, None, :, 1] * rows[None, :, None] + matrix[:, None, :, 2]  # (B, H, 2)
    return by_row[:, :, None, :] + by_col[:, None, :, :]


def _to_normalized(matrix, height, width):
    """Compose `matrix` with pixel -> grid_sample coordinates (align_corners=False).

    Python scalars only: a tensor built from a list would be a blocking host to
    device copy, on every batch.
    """
    x_row = matrix[:, 0] * (2.0 / width)
    y_row = matrix[:, 1] * (2.0 / height)
    x_row[:, 2] += 1.0 / width - 1.0
    y_row[:, 2] += 1.0 / height - 1.0
    return torch.stack([x_row, y_row], 1)


def _fold(coords, size, fill_mode):
    """Map out-of-range pixel coordinates into [0, size - 1] the way scipy does."""
    last = size - 1
    if fill_mode == "reflect":  # half-sample symmetric: d c b a | a b c d
        period = 2 * size
        folded = torch.remainder(coords + 0.5, period)
        coords = torch.where(folded >= size, period - folded, folded) - 0.5
    elif fill_mode == "wrap":  # scipy's legacy wrap: period size - 1, not size
        period = max(last, 1)
        below = coords + period * (torch.floor(-coords / period) + 1)
        above = coords - period * torch.floor(coords / period)
        coords = torch.where(coords < 0, below, torch.where(coords > last, above, coords))
    return torch.clamp(coords, 0, last)


def warp(x, matrix, fill_mode="nearest", cval=0.0, order=1):
    """Resample every image of a batch through its own affine matrix, in one pass.

    Matches scipy's `affine_transform` (hence Keras's legacy generator): orders 0
    (nearest, ties rounded up) and 1 (bilinear); fill modes `nearest` (clamp),
    `reflect` (half-sample symmetric), `wrap` (scipy's legacy wrap, period n - 1)
    and `constant` (`cval` wherever the source falls outside [0, n - 1]).

    Args:
        x: (B, C, H, W) tensor, any dtype; integer images are read as float32.
        matrix: (B, 2, 3) output-to-input pixel matrices (`keras_affine_matrix`).
        fill_mode: one of "constant", "nearest", "reflect", "wrap".
        cval: value written outside the image for fill_mode="constant".
        order: 0 or 1.

    Returns:
        (B, C, H, W) floating tensor (x's dtype if floating, else float32).
    """
    x, dtype = _samplable(x)
    _, _, height, width = x.shape
    if order == 1 and fill_mode in ("nearest", "reflect"):
        # grid_sample's own padding modes are exactly scipy's for these two.
        grid = _grid(_to_normalized(matrix, height, width), height, width, x.dtype)
        padding = "border" if fill_mode == "nearest" else "reflection"
        return F.grid_sample(x, grid, "bilinear", padding, align_corners=False).to(dtype)
    columns, rows = affine_points(*pixel_grid(height, width, x.device, x.dtype), matrix)
    return resample(x, columns, rows, fill_mode, cval, order).to(dtype)


def warp_zeros(x, matrix, order=1):
    """`warp` with torchvision's edge instead of Keras's: 0 wherever the sample falls
    outside the image, nearest ties rounded half to even, bilinear blending with the
    0 beyond the edge (torchvision's `affine` with no fill). One separable grid and
    one `grid_sample`: the policies' (RandAugment's, AugMix's) geometric operations.
    Half-precision images are sampled in float32 (a float16 grid misplaces pixels).
    """
    x, dtype = _samplable(x)
    _, _, height, width = x.shape
    grid = _grid(_to_normalized(matrix, height, width), height, width, x.dtype)
    mode = "nearest" if order == 0 else "bilinear"
    return F.grid_sample(x, grid, mode, "zeros", align_corners=False).to(dtype)


def warp_labels_zeros(labels, matrix):
    """Label masks through `warp_zeros`'s nearest sampling, exactly: each output pixel
    takes the label of the very pixel `warp_zeros(..., order=0)` reads for the images
    (the same grid through the same kernel, see `index_planes`), 0 outside."""
    batch, _, height, width = labels.shape
    planes = index_planes(batch, height, width, labels.device)
    return gather_planes(labels, warp_zeros(planes, matrix, order=0))


def _samplable(x):
    """(x as a dtype grid_sample resamples faithfully, the dtype to return): integer
    images are read as float32; float16/bfloat16 ones are sampled in float32, as a
    grid in their precision is off by up to half a pixel at a thousand pixels."""
    if x.dtype in (torch.float32, torch.float64):
        return x, x.dtype
    dtype = x.dtype if x.is_floating_point() else torch.float32
    return x.to(torch.float32), dtype


def index_planes(batch, height, width, device):
    """(batch, 2, height, width) float32 planes holding each pixel's row + 1 and column
    + 1 (exact in float32 up to 2**24 pixels a side; 0 is left for "outside").

    Resampled with nearest sampling by any kernel (grid_sample, a kornia module), the
    planes say which source pixel each output pixel read, or 0 where it read the
    padding: `gather_planes` then moves labels of any dtype exactly as the kernel
    moved the images."""
    rows = torch.arange(1, height + 1, device=device, dtype=torch.float32)
    cols = torch.arange(1, width + 1, device=device, dtype=torch.float32)
    planes = torch.stack(torch.meshgrid(rows, cols, indexing="ij"))
    return planes.unsqueeze(0).expand(batch, 2, height, width)


def gather_planes(labels, planes):
    """`labels` (B, K, H, W), any dtype, at the source pixels that resampled
    `index_planes` name: exact values, 0 where the planes read padding (0)."""
    height, width = labels.shape[2:]
    rows, cols = planes.round().long().unbind(1)
    outside = (rows < 1) | (cols < 1)
    out = gather_points(labels, (cols - 1).clamp(0, width - 1), (rows - 1).clamp(0, height - 1))
    return out.masked_fill(outside.unsqueeze(1), 0)


# Points are (columns, rows): two tensors of pixel coordinates (x, y) broadcasting to
# (B, h, w). Kept apart and broadcast, maps along one axis (crops, resizes) cost a
# row or a column per image, not a whole grid; only a map that mixes the axes (a
# rotation, a perspective, an elastic field) makes them full.


def pixel_grid(height, width, device, dtype=torch.float32):
    """The (columns (1, 1, width), rows (1, height, 1)) of every output pixel."""
    columns = torch.arange(width, device=device, dtype=dtype).view(1, 1, width)
    rows = torch.arange(height, device=device, dtype=dtype).view(1, height, 1)
    return columns, rows


def fold_points(columns, rows, height, width, fill_mode):
    """Finite source points brought into an image of (height, width) by `fill_mode`.

    "nearest", "reflect" and "wrap" fold the points into the image; "constant"
    clamps them and says which fell outside.

    Returns:
        (columns, rows, outside): the points within [0, width - 1] x [0, height - 1],
        and for "constant" a bool tensor broadcasting to (B, h, w), True where a
        point fell outside (else None).
    """
    outside = None
    if fill_mode == "constant":
        outside = (columns < 0) | (columns > width - 1) | (rows < 0) | (rows > height - 1)
    return _fold(columns, width, fill_mode), _fold(rows, height, fill_mode), outside


def resample(x, columns, rows, fill_mode="nearest", cval=0.0, order=1):
    """Sample every image of a batch at its own pixel coordinates, in one pass.

    `warp` for any finite source points: the output has the points' (h, w), so a
    crop, a resize, a perspective or an elastic field (or several of them, their
    maps composed) costs one `grid_sample`. Fill modes and orders are `warp`'s.

    Args:
        x: (B, C, H, W) tensor, any dtype; integer images are read as float32.
        columns: source x coordinates, broadcasting to (B, h, w).
        rows: source y coordinates, the same.
        fill_mode: one of "constant", "nearest", "reflect", "wrap".
        cval: value written where a point falls outside for fill_mode="constant".
        order: 0 (nearest, ties rounded up) or 1 (bilinear).

    Returns:
        (B, C, h, w) floating tensor (x's dtype if floating, else float32).
    """
    if not x.is_floating_point():
        x = x.to(torch.float32)
    _, _, height, width = x.shape
    columns, rows, outside = fold_points(columns, rows, height, width, fill_mode)
    out = sample_points(x, columns, rows, order)
    return out if outside is None else out.masked_fill(outside.unsqueeze(1), cval)


def sample_points(x, columns, rows, order=1):
    """Sample a floating batch at points already inside the images (`fold_points`):
    one `grid_sample`, nearest (ties rounded up) or bilinear. Half-precision images
    are sampled in float32 and come back in their dtype."""
    x, dtype = _samplable(x)
    batch, _, height, width = x.shape
    if order == 0:
        columns, rows = torch.floor(columns + 0.5), torch.floor(rows + 0.5)
    grid_x = (2 * columns.to(x.dtype) + 1) / width - 1
    grid_y = (2 * rows.to(x.dtype) + 1) / height - 1
    out_height, out_width = torch.broadcast_shapes(grid_x.shape, grid_y.shape)[1:]
    shape = (batch, out_height, out_width)
    grid = torch.stack([grid_x.expand(shape), grid_y.expand(shape)], -1)
    mode = "nearest" if order == 0 else "bilinear"
    return F.grid_sample(x, grid, mode, "border", align_corners=False).to(dtype)


def gather_points(x, columns, rows):
    """Nearest sampling (ties rounded up, as `sample_points(order=0)`) by indexing:
    exact for any dtype, so label masks keep every value (a float grid_sample would
    round int32/int64 labels above 2**24). Points (columns, rows) broadcast to
    (B, h, w) and lie inside the images (`fold_points`); when they are separable
    (columns (., 1, w), rows (., h, 1): crops, resizes) the rows and the columns are
    gathered apart, each a small index."""
    batch, channels, height, width = x.shape
    cols = torch.floor(columns + 0.5).long().clamp(0, width - 1)
    rows = torch.floor(rows + 0.5).long().clamp(0, height - 1)
    out_height, out_width = torch.broadcast_shapes(cols.shape, rows.shape)[1:]
    if cols.shape[1] == 1 and rows.shape[2] == 1:  # separable
        by_row = rows.expand(batch, out_height, 1).view(batch, 1, out_height, 1)
        x = x.gather(2, by_row.expand(batch, channels, out_height, width))
        by_col = cols.expand(batch, 1, out_width).view(batch, 1, 1, out_width)
        return x.gather(3, by_col.expand(batch, channels, out_height, out_width))
    index = (rows * width + cols).expand(batch, out_height, out_width)
    index = index.reshape(batch, 1, out_height * out_width).expand(batch, channels, -1)
    flat = x.reshape(batch, channels, height * width).gather(2, index)
    return flat.view(batch, channels, out_height, out_width)


def warp_labels(labels, matrix, fill_mode="nearest", dtype=torch.float32):
    """Label masks through `warp`'s geometry with nearest sampling, exactly (any
    dtype, every value kept): the points (computed in `dtype`, as the images' are)
    fold by `fill_mode`, and 0 is written where fill_mode="constant" leaves the
    image."""
    height, width = labels.shape[2:]
    points = affine_points(*pixel_grid(height, width, labels.device, dtype), matrix)
    columns, rows, outside = fold_points(*points, height, width, fill_mode)
    out = gather_points(labels, columns, rows)
    return out if outside is None else out.masked_fill(outside.unsqueeze(1), 0)


def affine_points(columns, rows, matrix):
    """Points through (B, 2, 3) affine maps: matrix @ (x, y, 1)."""
    m = matrix.to(columns.dtype).view(-1, 6, 1, 1).unbind(1)
    return m[0] * columns + (m[1] * rows + m[2]), m[3] * columns + (m[4] * rows + m[5])


def invert_affine(matrix):
    """(B, 2, 3) affine maps inverted, in float64: the input-to-output maps of
    output-to-input ones (a singular one gives non-finite points, which drop)."""
    m = matrix.to(torch.float64)
    linear, offset = m[:, :, :2], m[:, :, 2:]
    inverse = torch.linalg.inv_ex(linear).inverse
    return torch.cat([inverse, -inverse @ offset], 2)


def box_target_points(coords, start, length, out_length):
    """The inverse of `box_points` (without its clamps to the box): where input
    coordinates land in an `out_length` output sampling the box [start, start + length)."""
    if isinstance(start, torch.Tensor):
        start = start.to(coords.dtype).view(-1, 1, 1)
        length = length.to(coords.dtype).view(-1, 1, 1)
    return (coords - start + 0.5) * (out_length / length) - 0.5


def box_points(coords, start, length, out_length):
    """Coordinates of an `out_length` output along one axis sampling boxes
    [start, start + length) of the input (per image as (B,) tensors, or one box as
    Python numbers): a resize with half-pixel centres, clamped to the box, as
    `interpolate(align_corners=False)` resizes a cropped box. A box of the output's
    length is a plain crop; a box of the whole input, a resize."""
    if isinstance(start, torch.Tensor):
        start = start.to(coords.dtype).view(-1, 1, 1)
        length = length.to(coords.dtype).view(-1, 1, 1)
    inside = ((coords + 0.5) * (length / out_length) - 0.5).clamp(min=0)
    return start + inside.clamp(max=length - 1)


def perspective_coefficients(startpoints, endpoints):
    """(B, 8) float64 coefficients of the homographies taking each image's four
    `endpoints` to its `startpoints` ((B, 4, 2) (x, y) each): torchvision's
    `_get_perspective_coeffs`, solved for the whole batch. A degenerate
    quadrilateral (three corners on a line) gets the identity.
    """
    end = endpoints.to(torch.float64)
    start = startpoints.to(torch.float64)
    ex, ey = end.unbind(-1)  # (B, 4)
    sx, sy = start.unbind(-1)
    one, zero = torch.ones_like(ex), torch.zeros_like(ex)
    rows_x = torch.stack([ex, ey, one, zero, zero, zero, -sx * ex, -sx * ey], -1)
    rows_y = torch.stack([zero, zero, zero, ex, ey, one, -sy * ex, -sy * ey], -1)
    a = torch.stack([rows_x, rows_y], 2).reshape(-1, 8, 8)
    b = torch.stack([sx, sy], 2).reshape(-1, 8)
    solution, info = torch.linalg.solve_ex(a, b)
    good = (info == 0) & torch.isfinite(solution).all(-1)
    # [1, 0, 0, 0, 1, 0, 0, 0], made on the device (a tensor from a list is a copy).
    identity = torch.eye(3, dtype=torch.float64, device=a.device).flatten()[:8]
    return torch.where(good.unsqueeze(-1), solution, identity)


def homography_points(columns, rows, coefficients):
    """Points through per-image homographies given as torchvision's 8 `perspective`
    coefficients (which work on pixel corners: centre + 0.5). Where a point maps to
    the line at infinity it is sent far outside (a fill, never a NaN)."""
    c = coefficients.to(columns.dtype).view(-1, 8, 1, 1).unbind(1)
    x, y = columns + 0.5, rows + 0.5
    denominator = c[6] * x + (c[7] * y + 1)
    x_in = (c[0] * x + (c[1] * y + c[2])) / denominator - 0.5
    y_in = (c[3] * x + (c[4] * y + c[5])) / denominator - 0.5
    far = 1e6
    return (
        torch.nan_to_num(x_in, nan=-far, posinf=far, neginf=-far),
        torch.nan_to_num(y_in, nan=-far, posinf=far, neginf=-far),
    )


def projective_points(columns, rows, matrix):
    """Points through (B, 3, 3) projective maps (affine ones included): matrix @ (x, y,
    1), divided by the last coordinate; points sent to infinity land far outside."""
    m = matrix.to(columns.dtype).view(-1, 9, 1, 1).unbind(1)
    w = m[6] * columns + (m[7] * rows + m[8])
    x = (m[0] * columns + (m[1] * rows + m[2])) / w
    y = (m[3] * columns + (m[4] * rows + m[5])) / w
    far = 1e6
    return (
        torch.nan_to_num(x, nan=-far, posinf=far, neginf=-far),
        torch.nan_to_num(y, nan=-far, posinf=far, neginf=-far),
    )


def homography_target_points(columns, rows, coefficients):
    """The inverse of `homography_points`: input points to where the perspective puts
    them in the output (points beyond the horizon are sent far outside)."""
    c = coefficients.to(torch.float64)
    matrix = torch.cat([c, torch.ones_like(c[:, :1])], 1).view(-1, 3, 3)
    inverse = torch.linalg.inv_ex(matrix).inverse
    inverse = inverse / inverse[:, 2:, 2:]  # torchvision's form: the last entry 1
    coefficients = inverse.flatten(1)[:, :8]
    return homography_points(columns, rows, coefficients)


def displace_target_points(columns, rows, displacement, iterations=10):
    """The inverse of `displace_points` (approximate): the output points p with
    p + d(p) = the given input points, by fixed-point iteration p <- q - d(p), d read
    between pixels (bilinear, edges clamped). It converges where the field is smooth
    (|grad d| < 1); `tests/transforms/test_geometric.py` measures the residual."""
    field = displacement.to(torch.float64)
    x, y = columns.to(torch.float64), rows.to(torch.float64)
    out_x, out_y = x, y
    batch = field.shape[0]
    for _ in range(iterations):
        # Points (B, N, 1) read the field as a (N, 1) grid of each image.
        at = sample_points(field, *(v.expand(batch, *v.shape[1:]) for v in (out_x, out_y)))
        out_x, out_y = x - at[:, 0], y - at[:, 1]
    return out_x.to(columns.dtype), out_y.to(rows.dtype)


def displace_points(columns, rows, displacement, on_grid):
    """Points moved by a per-image field of pixel displacements (B, 2, H, W) (dx, dy).

    `on_grid`: the points are the field's own pixel grid, so each takes its pixel's
    displacement; otherwise the field is read between pixels (bilinear, edges
    clamped), which is how an elastic warp composes with the maps around it.
    """
    field = displacement.to(columns.dtype)
    if not on_grid:
        field = sample_points(field, columns, rows, order=1)
    return columns + field[:, 0], rows + field[:, 1]


def flip(x, flip_horizontal, flip_vertical):
    """Mirror the columns and/or rows of each image, exactly (no resampling)."""
    if flip_horizontal is not None:
        x = torch.where(flip_horizontal[:, None, None, None], x.flip(-1), x)
    if flip_vertical is not None:
        x = torch.where(flip_vertical[:, None, None, None], x.flip(-2), x)
    return x
