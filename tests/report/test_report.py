"""`oidc-watch diagnose --report FILE.html` in a real headless Chromium.

Run by tests/report/run.sh, which installs Debian's chromium (pinned) and the venv with
playwright (pinned; its wheel brings no browser: we launch /usr/bin/chromium), and sets
OIDC_WATCH (the binary under test), REPORT_OUT (where screenshots go) and CHROMIUM.

Each page is the report of one run; the numbers the page shows are compared with the JSON
lines that the same run printed.
"""

import collections
import functools
import json
import os
import pathlib
import struct
import subprocess
import zlib

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

ROOT = pathlib.Path(__file__).resolve().parents[2]
BINARY = os.environ.get("OIDC_WATCH", str(ROOT / "target/debug/oidc-watch"))
OUT = pathlib.Path(os.environ.get("REPORT_OUT", str(ROOT / "target/report")))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SECTIONS = ["summary", "timeline", "causes", "roles", "repositories", "subjects",
            "incidents", "probes", "findings", "diagnoses"]
VIEWPORTS = [(1280, 800), (390, 844)]


def burst_events(directory):
    """A retry burst, a later retry, and a stranger's attempts (one with markup in its
    repository name), made from the branch-mismatch sample by changing time, id and
    repository."""
    sample = ROOT / "events/subject-mismatch/branch/github-feature-branch-vs-main-only-policy.json"
    record = json.dumps(json.loads(sample.read_text())["detail"])
    lines = []
    plan = [(0, "acme/web-app"), (1, "acme/web-app"), (14, "acme/web-app"), (54, "acme/web-app"),
            (5, "evil-org/web-app"), (6, "evil-org/web-app"),
            (7, "evil-org/<script>alert(1)</script>|x")]
    for number, (minutes, repository) in enumerate(plan, start=1):
        r = json.loads(record.replace("acme/web-app", repository))
        r["eventTime"] = "2026-10-06T%02d:%02d:00Z" % (14 + minutes // 60, minutes % 60)
        r["eventID"] = "00000000-0000-4000-8000-%012d" % number
        lines.append(json.dumps(r))
    path = directory / "burst.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return [str(path)]


def run_report(inputs, page_path):
    result = subprocess.run(
        [BINARY, "diagnose", *inputs, "--account", "events/accounts/", "--format", "json",
         "--report", str(page_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"], timeout=60_000)
        yield b
        b.close()


def make_report(name, tmp_path_factory):
    directory = tmp_path_factory.mktemp(name)
    inputs = ["events/", "events/replay/"] if name == "samples" else burst_events(directory)
    page_path = directory / ("%s.html" % name)
    diagnoses = run_report(inputs, page_path)
    return name, page_path, diagnoses


@pytest.fixture(scope="module", params=["samples", "burst"])
def report(request, tmp_path_factory):
    return make_report(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def burst_report(tmp_path_factory):
    return make_report("burst", tmp_path_factory)


def once_more_if_the_renderer_crashed(test):
    """Chromium's renderer process can die under memory pressure from other work on the
    machine ("Target crashed"): that is no verdict on the page, so the test runs once more;
    a second crash, or any other error, fails it."""
    @functools.wraps(test)
    def run(*args, **kwargs):
        crashes = len(CRASHES)
        try:
            return test(*args, **kwargs)
        except (PlaywrightError, AssertionError) as error:
            if len(CRASHES) == crashes and "crashed" not in str(error).lower():
                raise
            print("renderer crashed (%s); running the test once more" % (str(error).splitlines() or ["?"])[0])
            return test(*args, **kwargs)
    return run


# One entry per renderer crash seen by any page.
CRASHES = []


class Opened:
    """One page in one viewport, with what it logged and requested."""

    def __init__(self, browser, page_path, width, height, scheme="light"):
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           color_scheme=scheme)
        self.page = self.context.new_page()
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("crash", lambda _: CRASHES.append(self.url))
        self.url = page_path.as_uri()
        self.page.goto(self.url, wait_until="load", timeout=30_000)

    def close(self):
        self.context.close()


def causes_of(diagnoses):
    return dict(collections.Counter(d["cause"] for d in diagnoses if d["cause"] != "None"))


@pytest.mark.parametrize("width,height", VIEWPORTS)
@once_more_if_the_renderer_crashed
def test_the_page_renders_with_the_json_numbers(browser, report, width, height):
    name, page_path, diagnoses = report
    opened = Opened(browser, page_path, width, height)
    page = opened.page
    try:
        failures = sum(1 for d in diagnoses if d["cause"] != "None")
        assert page.title() == "oidc-watch report: %d failures of %d calls" % (failures, len(diagnoses))
        for section in SECTIONS:
            assert page.locator("section#%s" % section).count() == 1, section
            assert page.locator("section#%s h2" % section).is_visible(), section

        summary = page.locator("section#summary")
        assert summary.get_attribute("data-events") == str(len(diagnoses))
        assert summary.get_attribute("data-failures") == str(failures)
        assert summary.get_attribute("data-successes") == str(len(diagnoses) - failures)
        shown = dict(zip(
            page.locator("#summary .card").evaluate_all("cs => cs.map(c => c.childNodes[1].textContent)"),
            page.locator("#summary .card .num").all_inner_texts()))
        assert shown["calls"] == str(len(diagnoses))
        assert shown["failures"] == str(failures)
        assert shown["successes"] == str(len(diagnoses) - failures)
        assert shown["failure rate"] == "%.1f%%" % (100.0 * failures / len(diagnoses))

        # Failures by cause: every bar is drawn, and its number is the JSON's count.
        rows = page.locator("#causes .bar[data-cause]").evaluate_all(
            """rows => rows.map(r => {
                 const bar = r.querySelector('rect.fail').getBoundingClientRect();
                 return [r.dataset.cause, r.querySelector('.n').textContent, bar.width, bar.height];
               })""")
        assert {cause: int(n) for cause, n, _, _ in rows} == causes_of(diagnoses)
        assert all(w > 0 and h > 0 for _, _, w, h in rows), rows

        # The time chart: exactly one drawing visible for this width, with bars of real size,
        # holding every call; the failure-rate line or its points are drawn.
        chart = page.evaluate(
            """() => {
                 const svg = [...document.querySelectorAll('svg.chart')]
                   .filter(s => s.getBoundingClientRect().width > 0);
                 if (svg.length !== 1) return {visible: svg.length};
                 const s = svg[0];
                 const bars = [...s.querySelectorAll('g.bucket rect')].map(r => r.getBBox());
                 let calls = 0;
                 for (const g of s.querySelectorAll('g.bucket'))
                   calls += +g.dataset.failures + +g.dataset.successes;
                 return {visible: 1, width: s.getBoundingClientRect().width,
                         bars: bars.length, drawn: bars.filter(b => b.width > 0 && b.height > 0).length,
                         calls, points: s.querySelectorAll('circle.rate-point').length};
               }""")
        assert chart["visible"] == 1, chart
        assert chart["bars"] > 0 and chart["drawn"] == chart["bars"], chart
        assert chart["calls"] == len(diagnoses), chart
        assert chart["points"] > 0, chart
        assert chart["width"] <= width

        # Readable: nothing wider than the window, text not shrunk below 10 px.
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, "%d px of horizontal overflow at %d px" % (overflow, width)
        smallest = page.evaluate(
            """() => Math.min(...[...document.querySelectorAll('td, dd, .label, h2, p')]
                   .filter(e => e.getBoundingClientRect().width > 0)
                   .map(e => parseFloat(getComputedStyle(e).fontSize)))""")
        assert smallest >= 10, smallest

        assert opened.errors == [], opened.errors
        assert opened.requests == [opened.url], opened.requests

        OUT.mkdir(parents=True, exist_ok=True)
        shot = OUT / ("report-%s-%dx%d.png" % (name, width, height))
        page.screenshot(path=str(shot))
        size, colours = png_colours(shot.read_bytes())
        assert size == (width, height), size
        # Not blank: text, bars and cards give far more than a handful of colours.
        assert colours > 30, "%s has %d colours" % (shot, colours)
    finally:
        opened.close()


@once_more_if_the_renderer_crashed
def test_strangers_markup_is_text_not_elements(browser, burst_report):
    _, page_path, _ = burst_report
    opened = Opened(browser, page_path, 1280, 800)
    try:
        page = opened.page
        assert page.evaluate("() => document.querySelectorAll('script, img, iframe').length") == 0
        assert "evil-org/<script>alert(1)</script>|x" in page.locator("#incidents").inner_text()
        # The retry burst is one incident of three attempts; the stranger's two subjects
        # are two probes of one owner.
        assert page.locator("#summary").get_attribute("data-incidents") == "4"
        assert page.locator("#summary").get_attribute("data-probes") == "2"
        probe = page.locator("#probes tbody tr").first.locator("td").all_inner_texts()
        assert probe[:5] == ["github:evil-org", "3", "2", "2", "1"], probe
        assert opened.errors == [], opened.errors
    finally:
        opened.close()


@once_more_if_the_renderer_crashed
def test_dark_and_light_follow_the_system(browser, report):
    _, page_path, _ = report
    backgrounds = {}
    for scheme in ["light", "dark"]:
        opened = Opened(browser, page_path, 1280, 800, scheme)
        try:
            backgrounds[scheme] = opened.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        finally:
            opened.close()
    assert backgrounds == {"light": "rgb(255, 255, 255)", "dark": "rgb(13, 17, 23)"}


def png_colours(data):
    """(width, height) and the number of distinct colours of an 8-bit RGB or RGBA PNG,
    decoded with the standard library."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, idat = 8, b""
    width = height = colour_type = None
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and colour_type in (2, 6), (depth, colour_type)
        elif kind == b"IDAT":
            idat += body
        position += 12 + length
    channels = 4 if colour_type == 6 else 3
    stride = width * channels
    raw = zlib.decompress(idat)
    previous = bytearray(stride)
    colours = set()
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up = previous[i]
            corner = previous[i - channels] if i >= channels else 0
            if kind == 1:
                line[i] = (line[i] + left) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + up) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                p = left + up - corner
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - corner)
                guess = left if pa <= pb and pa <= pc else (up if pb <= pc else corner)
                line[i] = (line[i] + guess) & 0xFF
        for x in range(0, stride, channels):
            colours.add(bytes(line[x:x + 3]))
        previous = line
    return (width, height), len(colours)
