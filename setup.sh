#!/usr/bin/env bash
# Install JR2Net with everything it needs, check the assets, and run the main job on its
# built-in default (a shaded render of the ICT face model with its normal/depth/light maps).
set -euo pipefail
cd "$(dirname "$0")"
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev]"
jr2net assets
jr2net render --expression jawOpen=0.6 --expression mouthSmile_L=0.4,mouthSmile_R=0.4 --yaw 20 --maps -o out/face.png
