"""How a message crosses a stage host's pipe: pickled, with CPU tensors as numpy arrays.

Torch pickles a tensor through its storage-serialisation path: a driving face (FaceParams and its
landmarks) took 0.3 ms to pickle and 0.5 ms to unpickle, against 0.06 and 0.03 ms as arrays; a frame
crosses two pipes each way. A tensor that needs autograd, is not a plain CPU tensor or has no numpy
dtype (bfloat16) goes torch's way.

Torch is never imported here: a process that has not imported it holds no tensor, so it pickles
nothing torch's way; what it passes on without reading (a frame's plan between two hosts, a
worker factory for a host) travels :class:`Packed` and stays unloaded there.
"""

from __future__ import annotations

import io
import pickle
import sys
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: object) -> object:
        torch = sys.modules.get("torch")  # None: no tensor can exist in this process
        if torch is None or type(obj) is not torch.Tensor:
            return NotImplemented
        if obj.device.type == "cpu" and not obj.requires_grad:
            try:
                return torch.from_numpy, (obj.numpy(),)
            except TypeError:  # no numpy dtype
                return NotImplemented
        return NotImplemented


def dumps(message: object) -> bytes:
    """``message`` pickled (highest protocol), its CPU tensors as numpy arrays."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(message)
    return buffer.getvalue()


def loads(data: bytes) -> object:
    """The message of :func:`dumps` (its tensors back as tensors)."""
    return pickle.loads(data)


@dataclass(frozen=True)
class Packed(Generic[T]):
    """A value pickled (:func:`dumps`) where it was made and loaded only where it is used, so a
    process that carries it between two others never imports what it holds (torch, the
    reenactor): a Ray session actor passes a frame's plan from the reconstruct host to the
    reenact host, and its workers' factories from the front door to the hosts, this way."""

    data: bytes

    @classmethod
    def of(cls, value: T) -> Packed[T]:
        """``value`` packed."""
        return cls(dumps(value))

    def unpack(self) -> T:
        """The packed value, loaded."""
        return loads(self.data)  # type: ignore[return-value]
