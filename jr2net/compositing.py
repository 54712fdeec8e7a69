"""Image-space helpers of the reenactor: sampling, smooth flow extrapolation, feathered masks."""

from __future__ import annotations

import functools
import math

import torch
from torch import Tensor

from jr2net.shapes import check_tensor


def sample(image: Tensor, points: Tensor, padding: str = "border", mode: str = "bilinear") -> Tensor:
    """Samples (``bilinear`` or ``nearest``) of (B, C, H, W) at pixel positions (B, H', W', 2)
    (centres at +0.5)."""
    dims = check_tensor("image", image, ("B", "C", "H", "W"))
    check_tensor("points", points, ("B", "Ho", "Wo", 2), dims)
    scale = torch.tensor(
        [2.0 / image.shape[-1], 2.0 / image.shape[-2]], dtype=points.dtype, device=points.device
    )
    grid = points * scale - 1.0
    return torch.nn.functional.grid_sample(image, grid, mode=mode, padding_mode=padding, align_corners=False)


def to_pixels(coarse: Tensor, height: int, width: int) -> Tensor:
    """(B, C, h, w) values over an H×W image at a coarser size (a spline's grid cells, a
    downscaled mask) resized bilinearly to every pixel: (B, C, H, W)."""
    return torch.nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)


def present(image: Tensor, points: Tensor, source: Tensor, display: Tensor) -> Tensor:
    """A frame computed at ``source``'s size shown at ``display``'s: ``display`` (1, 3, H', W')
    read at the frame's read ``points`` (1, H, W, 2) (pixels of ``source``), both upsampled, plus
    the frame's own change to ``source`` read there (``image`` (1, 3, H, W) minus ``source``
    (1, 3, H, W) sampled at ``points``), upsampled: where the frame is the warped source, the
    picture's own pixels at the larger size; where the renderer changed it (light, a mouth), that
    change, smoothly. (1, 3, H', W')."""
    size = display.shape[-2:]
    scale = torch.tensor([size[1] / source.shape[-1], size[0] / source.shape[-2]])
    change = image - sample(source, points)
    both = torch.cat([points.permute(0, 3, 1, 2), change], dim=1)  # one upsampling: half the time of two
    upsampled = to_pixels(both, *size)
    return sample(display, upsampled[:, :2].permute(0, 2, 3, 1) * scale) + upsampled[:, 2:]


# How many times slower a depthwise conv2d does a multiply-add than a matmul (CPU, one thread): 14
# to 112 by the shape over the blurs this project runs, and for a 1-channel 256×192 mask anywhere
# from 25 to 140 by the process (oneDNN's depthwise pass took 0.66 or 3.7 ms, the matrices 0.45).
CONVOLUTION_SLOWDOWN = 48


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (B, C, H, W) images by ``sigma`` pixels (edges replicated).

    Two depthwise convolutions, or, where that is cheaper (wide blurs of small images: the flow
    spread and the feathered masks of a frame), the same sums as two products with (H, H) and
    (W, W) blur matrices (equal to float rounding).
    """
    radius = max(1, math.ceil(3 * sigma))
    height, width = image.shape[-2:]
    if height + width <= CONVOLUTION_SLOWDOWN * 2 * (2 * radius + 1):
        rows, columns = (_blur_matrix(size, sigma, image.dtype, image.device) for size in (height, width))
        return rows @ image @ columns.T
    kernel = _blur_kernel(sigma, radius, image.dtype, image.device)
    channels = image.shape[1]
    padded = torch.nn.functional.pad(image, (radius, radius, 0, 0), mode="replicate")
    horizontal = torch.nn.functional.conv2d(
        padded, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels
    )
    padded = torch.nn.functional.pad(horizontal, (0, 0, radius, radius), mode="replicate")
    return torch.nn.functional.conv2d(
        padded, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels
    )


def _blur_kernel(sigma: float, radius: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(2 radius + 1,) normalised Gaussian weights."""
    offsets = torch.arange(-radius, radius + 1, dtype=dtype, device=device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


@functools.lru_cache(maxsize=64)
def _blur_matrix(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    """(size, size) a 1D Gaussian blur with replicated edges: row i weighs the samples output i
    averages (a sample past an edge is the edge's)."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=device)
    sources = (torch.arange(size, device=device)[:, None] + taps).clamp(0, size - 1)
    kernel = _blur_kernel(sigma, radius, dtype, device).expand(size, -1).contiguous()
    return torch.zeros(size, size, dtype=dtype, device=device).scatter_add_(1, sources, kernel)


def extrapolate_flow(
    flow: Tensor,
    mask: Tensor,
    sigma: float,
    downscale: int = 4,
    near_sigma: float | None = None,
    around: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """Spread a flow known on a mask smoothly outwards, fading to zero far from it.

    Args:
        flow: (B, 2, H, W) displacement, meaningful where ``mask`` is 1 (ignored, even NaN, elsewhere).
        mask: (B, 1, H, W) in [0, 1].
        sigma: spread in pixels (about a quarter of the face's size).
        downscale: work at this fraction of the resolution (the result is smooth anyway).
        near_sigma: when given, next to the mask the extension is the normalised convolution at
            this smaller spread instead (at least ``downscale``), handing over to the wide one
            where its own coverage fades: the wide average alone sits off the flow at the mask's
            edge wherever the flow varies across the mask (a head turning), which shows as a seam.
        around: a coarser flow known around the mask, (B, 2, h, w) and its (B, 1, h, w) mask at
            1/``downscale`` of the size (ceil): taken where the mask itself does not cover a small
            pixel, and spread on with it (the head's own motion beyond the face's).

    Returns:
        (B, 2, H, W): the flow itself on the mask, its normalised-convolution extension outside,
        at full strength where the mask's blurred coverage is above half its peak and fading to
        zero where it vanishes.
    """
    height, width = flow.shape[-2:]
    flow = torch.where(mask > 0, flow, torch.zeros_like(flow))
    small_flow = torch.nn.functional.avg_pool2d(flow * mask, downscale, ceil_mode=True)
    small_mask = torch.nn.functional.avg_pool2d(mask, downscale, ceil_mode=True)
    if around is not None:
        around_flow, around_mask = around
        check_tensor("around flow", around_flow, ("B", 2, small_mask.shape[-2], small_mask.shape[-1]))
        check_tensor("around mask", around_mask, ("B", 1, small_mask.shape[-2], small_mask.shape[-1]))
        rest = around_mask * (1 - small_mask)
        small_flow = small_flow + around_flow * rest
        small_mask = small_mask + rest
    known = torch.cat([small_flow, small_mask], 1)
    extended, coverage = _normalised_convolution(known, sigma / downscale)
    if near_sigma is not None:
        near, near_coverage = _normalised_convolution(known, max(near_sigma / downscale, 1.0))
        near_weight = (2 * near_coverage).clamp(0, 1)
        extended = near_weight * near + (1 - near_weight) * extended
    weight = (2 * coverage).clamp(0, 1)
    smooth = to_pixels(extended * weight, height, width)
    return flow * mask + smooth * (1 - mask)


def _normalised_convolution(known: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """``known`` (B, C+1, H, W), values premultiplied by the weight in its last channel, blurred:
    the values' weighted mean (B, C, H, W) and the weight's coverage over its peak (B, 1, H, W)."""
    values, weight = gaussian_blur(known, sigma).split([known.shape[1] - 1, 1], dim=1)
    coverage = weight / weight.amax(dim=(-2, -1), keepdim=True).clamp(min=1e-6)
    return values / weight.clamp(min=1e-6), coverage


def feather(mask: Tensor, width: float) -> Tensor:
    """A soft-edged version of a (B, 1, H, W) mask: 0 on and outside its edge, 1 a ``width`` inside.

    The blurred mask is 1/2 on the edge; rescaling (blur - 1/2) · 2 ramps from the edge inwards.
    """
    return ((gaussian_blur(mask, max(width / 2, 0.5)) - 0.5) * 2).clamp(0, 1) * mask


@functools.lru_cache(maxsize=16)
def pixel_centres(height: int, width: int) -> Tensor:
    """(1, H, W, 2) pixel-centre positions (x, y), at +0.5.

    Made once per size and shared by every caller (a frame's warp asks for them several times):
    never modify the result in place."""
    ys = torch.arange(height, dtype=torch.float32) + 0.5
    xs = torch.arange(width, dtype=torch.float32) + 0.5
    return torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)[None]
