#!/usr/bin/env python3
"""Rebuilds the committed attack corpus of tests/hostile/ (corpus/*).

  python3 tests/hostile/make_corpus.py --binary target/release/roadsign-torch

Standard library only, plus the roadsign binary for the one real scene (its
data_generation pipeline, seeded, so the same bytes come out each time).
The files stay small (about 330 KB in all); large and video inputs are made
at run time by hostile.py instead.

  scene.jpg                 a 640x640 synthetic road scene with six signs
  truncated.jpg             its first third (no end-of-image marker)
  bomb_100000x100000.png    a 1x1 PNG whose header declares 10^10 pixels
  rgba16_6000x6000.png      a real 6000x6000 16-bit RGBA PNG (all zero): under
                            max_pixels, but 396 MB to decode at its own depth
  wide_70000x1.png          decodes fine, but no JPEG can be 70000 wide
  tiny.gif                  a GIF: an image, of a type the server does not take
  garbage.bin               bytes that are no image and no video
"""
import argparse
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
CORPUS = HERE / "corpus"

# The scene: data_generation with this seed and count, its third image (six
# signs, four of them with text, so that OCR runs on every valid request).
SCENE_SEED, SCENE_COUNT, SCENE_FILE = 5, 3, "scene_00002.jpg"


def png_chunk(kind, payload):
    return (struct.pack(">I", len(payload)) + kind + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF))


def png(width, height, bit_depth, color_type, rows):
    """A PNG of `rows` (each without its filter byte), compressed row by row
    so that a large image never sits in memory whole."""
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(b"\x00" + row) for row in rows) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data)
            + png_chunk(b"IEND", b""))


def png_declaring(width, height):
    """One RGB pixel of data under a header declaring width x height (as
    tests/common/bomb.rs): a decoder that believes the header allocates."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header)
            + png_chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00")) + png_chunk(b"IEND", b""))


def scene_jpeg(binary):
    """The seeded synthetic scene, from the binary's data_generation pipeline
    run in a scratch copy of the project."""
    with tempfile.TemporaryDirectory(prefix="roadsign-corpus-") as scratch:
        for name in ("pipelines.yml", "catalog.yml", "parameters.yml"):
            shutil.copy(REPO / name, scratch)
        subprocess.run(
            [str(binary), "run", "--pipeline", "data_generation", "--project-dir", scratch,
             "--params", f"data_generation.scenes={SCENE_COUNT},data_generation.seed={SCENE_SEED}"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return (Path(scratch) / "data/01_raw/road_signs/images" / SCENE_FILE).read_bytes()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default=str(REPO / "target/release/roadsign-torch"))
    args = parser.parse_args()
    scene = scene_jpeg(args.binary)
    files = {
        "scene.jpg": scene,
        "truncated.jpg": scene[: len(scene) // 3],
        "bomb_100000x100000.png": png_declaring(100_000, 100_000),
        # Colour type 6 (RGBA) at 16 bits: 8 bytes a pixel.
        "rgba16_6000x6000.png": png(6000, 6000, 16, 6, (bytes(6000 * 8) for _ in range(6000))),
        "wide_70000x1.png": png(70_000, 1, 8, 2, [bytes(70_000 * 3)]),
        "tiny.gif": b"GIF89a\x01\x00\x01\x00\x00\x00\x00;",
        "garbage.bin": b"this is neither an image nor a video\n" * 8,
    }
    CORPUS.mkdir(exist_ok=True)
    for name, data in files.items():
        (CORPUS / name).write_bytes(data)
        print(f"{len(data):>9} {CORPUS / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
