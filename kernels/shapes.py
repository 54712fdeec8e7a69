"""Shape and dtype checks for public functions (kornia style).

A wrong shape fails at the public boundary with a message that names the argument, instead of a
broadcasting error deep inside an op.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class ShapeError(ValueError):
    """An argument has the wrong shape or dtype."""


def check_tensor(
    name: str,
    tensor: object,
    spec: Sequence[int | str],
    dims: dict[str, int] | None = None,
    dtype: torch.dtype | tuple[torch.dtype, ...] | None = None,
) -> dict[str, int]:
    """Check that ``tensor`` matches ``spec`` and return the bound dimension sizes.

    Args:
        name: the argument's name, used in the error message.
        tensor: the value to check; anything that is not a tensor is an error.
        spec: one entry per dimension: an int is an exact size, a string names a size that must
            agree wherever the same name appears (in this spec and in ``dims``).
        dims: sizes bound by earlier checks; updated in place with the new names.
        dtype: the allowed dtype or dtypes, or ``None`` for any.

    Returns:
        ``dims`` with every named size of ``spec`` bound.
    """
    dims = {} if dims is None else dims
    wanted = "(" + ", ".join(str(s) for s in spec) + ")"
    if not isinstance(tensor, torch.Tensor):
        raise ShapeError(
            f"argument '{name}' must be a torch.Tensor of shape {wanted}, got {type(tensor).__name__}"
        )
    if tensor.dim() != len(spec):
        raise ShapeError(f"argument '{name}' must have shape {wanted}, got {tuple(tensor.shape)}")
    for axis, (want, got) in enumerate(zip(spec, tensor.shape)):
        if isinstance(want, int):
            if want != got:
                raise ShapeError(
                    f"argument '{name}' must have shape {wanted}, got {tuple(tensor.shape)} (axis {axis})"
                )
        elif want in dims and dims[want] != got:
            raise ShapeError(
                f"argument '{name}' must have shape {wanted} with {want}={dims[want]}, "
                f"got {tuple(tensor.shape)} (axis {axis})"
            )
        else:
            dims[want] = got
    if dtype is not None:
        allowed = dtype if isinstance(dtype, tuple) else (dtype,)
        if tensor.dtype not in allowed:
            names = " or ".join(str(d) for d in allowed)
            raise ShapeError(f"argument '{name}' must have dtype {names}, got {tensor.dtype}")
    return dims
