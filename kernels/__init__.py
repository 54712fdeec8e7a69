"""Rendering and warping kernels: torch references, numba CPU twins and CUDA kernels.

Everything here works on plain tensors with documented shape contracts; ``jr2net`` reaches it only
through its renderer facade (``jr2net.render`` and ``jr2net.warp``).
"""
