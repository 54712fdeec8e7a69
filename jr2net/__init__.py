"""JR2Net: live monocular 3D face reconstruction and reenactment.

Import layout: the repository's top-level folders are subpackages of one import root,
``jr2net`` (``kernels/`` is ``jr2net.kernels``, ``engines/`` is ``jr2net.engines``, and so on),
as declared once in ``pyproject.toml``.
"""

__version__ = "0.1.0"
