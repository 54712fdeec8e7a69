"""What crosses a stage host's pipe: tensors travel as numpy arrays and come back as equal tensors."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import torch

from jr2net.params import FaceParams
from jr2net.realtime import wire
from jr2net.realtime.reenactment import DrivingFace


def _params() -> FaceParams:
    generator = torch.Generator().manual_seed(0)
    return FaceParams(
        identity=torch.randn(1, 100, generator=generator),
        expression=torch.rand(1, 53, generator=generator),
        rotation=torch.randn(1, 3, generator=generator),
        translation=torch.randn(1, 3, generator=generator),
        focal=torch.tensor([500.0]),
        light=torch.randn(1, 3, 9, generator=generator).transpose(1, 2),  # not contiguous
        albedo=None,
    )


def test_a_driving_face_comes_back_equal_with_its_tensors_as_arrays_on_the_wire() -> None:
    params = _params()
    face = DrivingFace(params, np.random.default_rng(0).random((478, 3)))
    data = wire.dumps(face)
    assert b"_rebuild_tensor" not in data, "no tensor took torch's own pickling"
    back = wire.loads(data)
    for name in ("identity", "expression", "rotation", "translation", "focal", "light"):
        sent, received = getattr(params, name), getattr(back.params, name)
        assert type(received) is torch.Tensor and received.dtype == sent.dtype
        assert torch.equal(received, sent), name
    assert back.params.albedo is None and np.array_equal(back.landmarks, face.landmarks)


def test_tensors_numpy_cannot_hold_go_torchs_way() -> None:
    message = {"half": torch.ones(2, dtype=torch.bfloat16), "grad": torch.ones(2, requires_grad=True)}
    data = wire.dumps(message)
    assert b"_rebuild_tensor" in data
    back = wire.loads(data)
    assert back["half"].dtype == torch.bfloat16 and torch.equal(back["half"], message["half"])
    assert back["grad"].requires_grad


CARRIER = """
import sys
from jr2net.realtime import wire
message = wire.loads(sys.stdin.buffer.read())
sys.stdout.buffer.write(wire.dumps(message))
assert "torch" not in sys.modules, "carrying a packed value imported torch"
"""


def test_a_process_without_torch_carries_a_packed_face_unloaded() -> None:
    face = DrivingFace(_params(), np.random.default_rng(1).random((478, 3)))
    message = ("frame", "key", wire.Packed.of(face))
    carried = subprocess.run(
        [sys.executable, "-c", CARRIER], input=wire.dumps(message), capture_output=True, check=True
    ).stdout
    kind, key, packed = wire.loads(carried)
    assert (kind, key) == ("frame", "key") and packed == message[2]
    back = packed.unpack()
    assert torch.equal(back.params.expression, face.params.expression)
    assert np.array_equal(back.landmarks, face.landmarks)
