#!/usr/bin/env python3
"""Opens the HTML go/no-go report in headless Chromium, as a release meeting would.

    check_report_render.py RENDER_TOOL DOCUMENT.json WORK_DIR

Renders DOCUMENT.json with RENDER_TOOL (safemig_render_report), takes a screenshot and the
DOM with Chromium, and fails unless the screenshot shows a drawn page (not blank: many
colours, the no-go red among them) and the DOM carries the verdict, the rehearsed times
and the rollback-readiness sentence. Without Chromium it skips (exit 77), except under
CI=true where a missing browser is a failure: CI must not pass a test it did not run.
"""

import collections
import html.parser
import itertools
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

# What a reader of the sample document (tests/render/no_go_rehearsal.json) must find.
EXPECTED_TEXT = [
    "NO-GO",
    "safemig rehearse says this release must not go out, because:",
    "20260301090000_add_url: down leaves the schema different: column post.url still exists",
    "If something goes wrong, we can be back in about 812 ms by restore; down-migrations are "
    "not available: 20260301090000_add_url's down leaves the schema different; "
    "20260302000000_drop_phone is irreversible.",
    "up 2.4 s", "down 1.3 s", "up 12 ms", "down 8 ms", "up 5.3 s", "down not run",
    "dropping column customer.phone loses 48211 non-null values",
    "rehearsal FAIL",
]
NO_GO_RED = (0xB3, 0x26, 0x1E)  # the verdict's border
WIDTH, HEIGHT = 1200, 1600


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium_command(chromium, profile, *arguments):
    # Root (CI runs as root) needs --no-sandbox; a profile of our own keeps parallel runs apart.
    return [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", "--disable-extensions", "--disable-dev-shm-usage",
            f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *arguments]


def run(command, what):
    try:
        result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        fail(f"{what} took longer than 60 s: {' '.join(command)}")
    if result.returncode != 0:
        fail(f"{what} exited {result.returncode}: {result.stderr.decode(errors='replace')[-2000:]}")
    return result


def add_bytes(a, b):
    """Bytewise (a + b) mod 256 of two equal-length rows, on whole rows at once: the sum of
    the low seven bits of each byte cannot carry into the next, the top bit is an XOR."""
    size = len(a)
    low = int.from_bytes(b"\x7f" * size, "big")
    high = int.from_bytes(b"\x80" * size, "big")
    x, y = int.from_bytes(a, "big"), int.from_bytes(b, "big")
    return bytearray((((x & low) + (y & low)) ^ ((x ^ y) & high)).to_bytes(size, "big"))


def unfilter(filter_type, line, previous, channels):
    """One PNG scanline with its filter undone (PNG specification, section 9)."""
    if filter_type == 0:
        return line
    if filter_type == 2:
        return add_bytes(line, previous)
    if filter_type == 1:
        out = bytearray(line)
        for channel in range(channels):
            out[channel::channels] = bytes(
                v & 0xFF for v in itertools.accumulate(line[channel::channels]))
        return out
    out = bytearray(line)
    for x in range(len(out)):
        left = out[x - channels] if x >= channels else 0
        up = previous[x]
        if filter_type == 3:
            out[x] = (out[x] + ((left + up) >> 1)) & 0xFF
            continue
        up_left = previous[x - channels] if x >= channels else 0
        estimate = left + up - up_left
        distance_left, distance_up = abs(estimate - left), abs(estimate - up)
        distance_up_left = abs(estimate - up_left)
        if distance_left <= distance_up and distance_left <= distance_up_left:
            predictor = left
        elif distance_up <= distance_up_left:
            predictor = up
        else:
            predictor = up_left
        out[x] = (out[x] + predictor) & 0xFF
    return out


def decode_png(data):
    """(width, height, how many pixels of each RGB colour) of an 8-bit RGB or RGBA PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("the screenshot is not a PNG")
    position, idat, header = 8, b"", None
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        kind = data[position + 4:position + 8]
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    if header is None:
        fail("the screenshot has no PNG header")
    width, height, depth, colour_type, _, _, interlace = header
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        fail(f"unexpected PNG format: depth {depth}, colour type {colour_type}")
    channels = 3 if colour_type == 2 else 4
    stride = width * channels
    raw = zlib.decompress(idat)
    colours = collections.Counter()
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        line = unfilter(raw[start], bytearray(raw[start + 1:start + 1 + stride]), previous,
                        channels)
        colours.update(zip(line[0::channels], line[1::channels], line[2::channels]))
        previous = line
    return width, height, colours


class TextOf(html.parser.HTMLParser):
    """The text a reader sees, without styles and scripts."""

    def __init__(self):
        super().__init__()
        self.parts, self.skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self.skipping += tag in ("style", "script", "head")
        self.parts.append(" ")

    def handle_endtag(self, tag):
        self.skipping -= tag in ("style", "script", "head")
        self.parts.append(" ")

    def handle_data(self, data):
        if not self.skipping:
            self.parts.append(data)

    def text(self):
        return " ".join("".join(self.parts).split())


def main():
    if len(sys.argv) != 4:
        fail("usage: check_report_render.py RENDER_TOOL DOCUMENT.json WORK_DIR")
    tool, document, work = sys.argv[1:]
    chromium = find_chromium()
    if chromium is None:
        if os.environ.get("CI") == "true":
            fail("chromium is not installed (scripts/setup installs it); CI cannot skip this test")
        print("SKIP: chromium is not installed; scripts/setup installs it")
        sys.exit(77)

    os.makedirs(work, exist_ok=True)
    page = os.path.join(work, "report.html")
    screenshot = os.path.join(work, "report.png")
    if os.path.exists(screenshot):
        os.remove(screenshot)
    run([tool, document, page, os.path.join(work, "summary.md")], "rendering the report")

    # One browser start for both: the screenshot and the DOM after layout.
    with tempfile.TemporaryDirectory(prefix="safemig-chromium-") as profile:
        url = "file://" + os.path.abspath(page)
        dom = run(chromium_command(chromium, profile, f"--screenshot={screenshot}", "--dump-dom",
                                   url), "chromium")

    if not os.path.exists(screenshot):
        fail("chromium wrote no screenshot")
    with open(screenshot, "rb") as png:
        width, height, colours = decode_png(png.read())
    if (width, height) != (WIDTH, HEIGHT):
        fail(f"screenshot is {width}x{height}, expected {WIDTH}x{HEIGHT}")
    share = 1 - colours[(255, 255, 255)] / (width * height)
    print(f"screenshot {width}x{height}: {len(colours)} colours, {share:.1%} not white")
    if len(colours) < 16 or share < 0.02:
        fail("the screenshot looks blank")
    if not any(all(abs(a - b) <= 8 for a, b in zip(colour, NO_GO_RED)) for colour in colours):
        fail("the no-go verdict's red is not on the screenshot: the page's style was not applied")

    parser = TextOf()
    parser.feed(dom.stdout.decode("utf-8", errors="replace"))
    text = parser.text()
    missing = [expected for expected in EXPECTED_TEXT if expected not in text]
    if missing:
        fail("the page does not show: " + " | ".join(missing) + "\npage text: " + text[:3000])
    print(f"report renders: {len(EXPECTED_TEXT)} key figures found; screenshot {screenshot}")


if __name__ == "__main__":
    main()
