"""Shape checks at public boundaries, shared with ``kernels`` (which may not import ``jr2net``)."""

from jr2net.kernels.shapes import ShapeError, check_tensor

__all__ = ["ShapeError", "check_tensor"]
