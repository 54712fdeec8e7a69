#!/usr/bin/env bash
# Install JR2Net with everything it needs, check the assets, and run the main job on its
# built-in default: a shaded render of the ICT face model with its maps, then the live pipeline
# end to end on a driving clip rendered from the face model, onto the built-in avatar
# (out/demo.mp4: driving | result, with fps and per-stage latency printed).
set -euo pipefail
cd "$(dirname "$0")"
# Headless Chromium and its driver (Debian packages) for the browser test of `jr2net serve`.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
    else
        echo "note: chromium and chromium-driver are missing (sudo apt-get install chromium chromium-driver); the browser test will skip" >&2
    fi
fi
python3 -m pip install --quiet --disable-pip-version-check -e ".[dev,ray]"
jr2net assets
jr2net render --expression jawOpen=0.6 --expression mouthSmile_L=0.4,mouthSmile_R=0.4 --yaw 20 --maps -o out/face.png
jr2net demo -o out/demo.mp4
