"""Networks: backbones and the reconstruction network (RecNet)."""
