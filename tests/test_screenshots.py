"""docs/screenshots/make.py, the README's screenshots from the demo: run as the README
says, on a small demo, into a folder of the test's own, every picture is a PNG of the
fixed viewport. The survey editor's picture is there only where the dashboard has the
editor (the script says when it skipped it)."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from tests.dashboard.test_browser import CHROMIUM

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "screenshots" / "make.py"
# docs/screenshots/make.py's VIEWPORT.
WIDTH, HEIGHT = 1280, 800
ALWAYS = ("dashboard.png", "surveys.png", "preview.png")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """A PNG's width and height, once the whole file reads as one (no image library is a
    dependency, so by the PNG specification): the signature, every chunk's CRC, IHDR
    first and IEND last, and pixel data that inflates to exactly a row of filter byte
    and pixels per line of the image."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE, f"{path.name} is not a PNG"
    chunks, at = [], 8
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"{path.name}: bad CRC in {kind!r}"
        chunks.append((kind, body))
        at += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND", path.name
    width, height, depth, colour = struct.unpack(">IIBB", chunks[0][1][:10])
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    pixels = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    assert len(pixels) == height * (1 + (width * channels * depth + 7) // 8), path.name
    return width, height


def test_the_script_saves_each_page_at_the_viewport_size(tmp_path):
    if not CHROMIUM.exists():
        message = f"Debian's Chromium is not installed at {CHROMIUM}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path / "shots"
    # As a new user's shell would run it: the demo's own SQLite file and embedded queue.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), "--calls", "20"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    editor = "editor.png" if (out / "editor.png").exists() else None
    if editor is None:
        assert "skipped editor.png" in done.stdout
    saved = sorted(path.name for path in out.iterdir())
    assert saved == sorted([*ALWAYS, *([editor] if editor else [])])
    for name in saved:
        assert png_size(out / name) == (WIDTH, HEIGHT), name
    # The demo ran in a folder of its own: nothing left where the script was run.
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shots"]
