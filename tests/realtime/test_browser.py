"""A real headless Chromium, with a shared clip as its fake webcam, against ``jr2net serve``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from tests.conftest import video_frames

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None, reason="needs Debian's chromium and chromium-driver"
)


def write_y4m(path: Path, frames: list[np.ndarray], fps: int = 25) -> None:
    """Frames as a YUV4MPEG2 (4:2:0) file, Chromium's fake-webcam format."""
    height, width = frames[0].shape[:2]
    with path.open("wb") as handle:
        handle.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            yuv = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
            handle.write(b"FRAME\n")
            for plane_index, plane in enumerate(yuv.planes):
                rows, columns = (height, width) if plane_index == 0 else (height // 2, width // 2)
                data = np.frombuffer(bytes(plane), np.uint8).reshape(rows, plane.line_size)[:, :columns]
                handle.write(data.tobytes())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jr2net.cli",
            "serve",
            "--port",
            str(port),
            "--source",
            "model",
            "--size",
            "160",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.3)
        yield f"http://127.0.0.1:{port}/"
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_browser_sees_the_reenacted_stream(served: str, shared_media: Path, tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    frames = video_frames(shared_media / "liveportrait/driving/d0.mp4", set(range(75)))
    clip = tmp_path / "webcam.y4m"
    write_y4m(clip, [frames[i][::2, ::2].copy() for i in sorted(frames)])
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={clip}",
        "--allow-loopback-in-peer-connection",
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_script_timeout(60)
        driver.get(served)
        photo = shared_media / "liveportrait/source/s12.jpg"
        driver.find_element("css selector", "#upload input[type=file]").send_keys(str(photo))
        driver.find_element("css selector", "#upload button").click()
        _wait_for_text(driver, "message", "source ready")
        driver.find_element("id", "start").click()
        played = driver.execute_async_script(
            """
            const done = arguments[arguments.length - 1];
            const remote = document.getElementById('remote'), local = document.getElementById('local');
            const started = Date.now();
            (function poll() {
              const quality = remote.getVideoPlaybackQuality();
              if (quality.totalVideoFrames >= 10 && remote.videoWidth > 0) {
                done({frames: quality.totalVideoFrames, width: remote.videoWidth, height: remote.videoHeight,
                      localWidth: local.videoWidth, stats: document.getElementById('stats').textContent});
              } else if (Date.now() - started > 50000) {
                done({frames: quality.totalVideoFrames, width: remote.videoWidth, error: 'timeout',
                      message: document.getElementById('message').textContent});
              } else { setTimeout(poll, 250); }
            })();
            """
        )
        if "error" not in played:
            driver.find_element("id", "recalibrate").click()
            recalibrated = _wait_for_text(driver, "message", "recalibrated")
            stats = _wait_for_text(driver, "stats", "caller-1")
            cap = driver.execute_script(
                "const sender = peer.getSenders().find((c) => c.track && c.track.kind === 'video');"
                "return sender.getParameters().encodings[0].maxFramerate || null;"
            )
    finally:
        driver.quit()
    assert "error" not in played, played
    assert played["frames"] >= 10
    assert (played["width"], played["height"]) == (120, 160) and played["localWidth"] == 256, (
        "the remote video is the uploaded photo (375x500 at 160), not the input or the avatar"
    )
    assert "fps" in stats and "server: 1 caller(s)" in stats, stats
    assert "your current face is the neutral one" in recalibrated
    assert "sending at most" in stats and cap is not None and 1 <= cap <= 30, (stats, cap)


def _wait_for_text(driver: object, element: str, expected: str, timeout_s: float = 30.0) -> str:
    """The page element's text once it contains ``expected``; fails with what it says otherwise."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = driver.find_element("id", element).text
        if expected in text:
            return text
        time.sleep(0.2)
    raise AssertionError(f"#{element} said {text!r}, not {expected!r}")
