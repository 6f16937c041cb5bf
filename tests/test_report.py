"""``gantk report`` and ``gantk interpolate``: the page, slerp, the commands, and the page in a real browser."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from PIL import Image

import gantk
from gantk.engine.config import TrainConfig
from gantk.errors import UsageError
from gantk.plugins.tools.interpolation import interpolate, slerp
from gantk.plugins.tools.report import build_report, evenly_spaced
from gantk.engine.sampling import draw
from gantk.engine.trainer import Trainer

from engine_helpers import gantk_command, tiny_config

SECTIONS = ["run", "losses", "metrics", "samples", "interpolation"]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    """Three finished tiny runs: unconditional digits (13 sample pictures), conditional digits, ring8 with metrics."""
    root = tmp_path_factory.mktemp("runs")
    ring8 = TrainConfig.from_options({
        "gen": "mlp", "dataset": "ring8", "gen_options": {"z_dim": 2, "hidden": (32, 32)},
        "disc_options": {"hidden": (32, 32)}, "batch_size": 64, "steps": 10, "precision": "fp32", "ema": None,
        "log_every": 5, "sample_every": 5, "checkpoint_every": 1000, "num_samples": 200,
        "eval_every": 5, "eval_metrics": ["modes"]})
    configs = {"image": tiny_config(steps=26, sample_every=2, log_every=5),
               "conditional": tiny_config(steps=6, loss="ns+ac", sample_every=3),
               "ring8": ring8}
    for name, config in configs.items():
        Trainer(config, root / name, show_progress=False).train()
    return root


class _Page(HTMLParser):
    """The ``<img src>`` of each ``<section id>``, and the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: dict[str, list[str]] = {}
        self.section: str | None = None
        self.text: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.section = attrs["id"]
            self.images[self.section] = []
        elif tag == "img":
            self.images[self.section].append(attrs["src"])

    def handle_data(self, data):
        self.text.append(data)


def read_page(page: Path) -> _Page:
    parsed = _Page(page.read_text(encoding="utf-8"))
    assert list(parsed.images) == SECTIONS
    for source in (src for sources in parsed.images.values() for src in sources):
        assert "/" not in source and (page.parent / source).is_file()  # relative, beside the page
    return parsed


def test_unconditional_image_run_page(runs):
    page = build_report(runs / "image")
    assert page == runs / "image" / "report" / "index.html"
    parsed = read_page(page)
    text = " ".join(parsed.text)
    assert parsed.images["run"] == [] and "dcgan (z_dim=16, width=8" in text and "steps reached" in text
    assert "Generator: g/ns" in text and "weighted total" not in text  # one term: the total is the same line
    assert parsed.images["losses"] == ["loss_d.png", "loss_g.png"]
    assert parsed.images["metrics"] == [] and "No evaluation metrics" in text
    samples = parsed.images["samples"]  # 13 pictures (steps 2..26): 12 shown, first and last included
    assert len(samples) == 12 and samples[0] == "step_000002.png" and samples[-1] == "step_000026.png"
    assert "step 26" in text and "12 of 13 pictures" in text
    assert parsed.images["interpolation"] == ["interpolation.png"]
    assert Image.open(page.parent / "interpolation.png").size == (10 * (8 + 2) + 2, 8 + 2 + 2)  # one row of 10
    assert "<script" not in page.read_text() and "http" not in page.read_text()


def test_conditional_run_page_has_a_row_per_class(runs):
    page = build_report(runs / "conditional")
    parsed = read_page(page)
    assert parsed.images["losses"] == ["loss_d.png", "loss_g.png"]
    assert parsed.images["samples"] == ["step_000003.png", "step_000006.png"]
    assert Image.open(page.parent / "interpolation.png").size == (102, 102)  # 10 classes × 10 frames
    text = " ".join(parsed.text)
    assert "One row per class" in text and "Discriminator: d/ns, d/ac and the weighted total" in text


def test_ring8_page_has_metric_curves_and_samples_over_the_modes(runs, tmp_path):
    page = build_report(runs / "ring8", tmp_path / "elsewhere")
    assert page == tmp_path / "elsewhere" / "index.html"
    parsed = read_page(page)
    metrics, text = parsed.images["metrics"], " ".join(parsed.text)
    assert metrics[:2] == ["metric_modes.png", "metric_high_quality.png"] and "metric_n.png" not in metrics
    # reverse KL is infinite while some high-quality bin is empty: a curve, or a sentence saying why not
    assert metrics[2:] == ["metric_reverse_kl.png"] or "no finite value yet: eval/reverse_kl" in text
    assert Image.open(page.parent / "interpolation.png").size == (500, 500)  # a matplotlib scatter plot
    assert "modes (red ×)" in text


def test_missing_pieces_are_sentences_and_per_class_keys_are_not_plotted(runs, tmp_path):
    run = tmp_path / "partial"
    run.mkdir()
    shutil.copy(runs / "image" / "config.json", run / "config.json")
    text = " ".join(read_page(build_report(run)).text)
    for sentence in ("No metrics.jsonl", "No sample pictures yet", "No generator.safetensors yet", "no summary.json"):
        assert sentence in text
    lines = [{"step": 0, "eval/accuracy": 0.1, "eval/accuracy/3": 0.2, "eval/n": 100, "eval/fid": math.inf},
             {"step": 5, "d/ns": 1.3, "g/ns": 0.7, "d/total": 1.3, "g/total": 0.7},
             {"step": 5, "eval/accuracy": 0.5, "eval/accuracy/3": 0.6, "eval/n": 100}]
    (run / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 6, "d/')
    parsed = read_page(build_report(run))
    text = " ".join(parsed.text)
    assert parsed.images["metrics"] == ["metric_accuracy.png"]  # not eval/accuracy/3 nor eval/n
    assert "no finite value yet: eval/fid" in text and "1 line(s) of metrics.jsonl could not be read" in text


def test_report_command_finds_a_run_by_name(runs, cli):
    result = cli("report", "conditional", "--runs-dir", str(runs))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(runs / "conditional" / "report" / "index.html")


def test_a_path_that_is_not_a_run_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="is not a run directory"):
        build_report(tmp_path)
    result = gantk_command("report", str(tmp_path), "--runs-dir", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"Error: '{tmp_path}' is not a run directory")
    assert "gantk train" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_interpolate_writes_a_strip_of_the_right_size(runs, tmp_path):
    out = tmp_path / "strip.png"
    result = gantk_command("interpolate", "conditional", "--runs-dir", str(runs), "--label", "3", "--steps", "7",
                           "--seed", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (7 * (8 + 2) + 2, 8 + 2 + 2)  # one row (class 3) of 7 frames


def test_interpolation_starts_and_ends_at_the_samples_of_the_seed(runs):
    generator = gantk.load_generator(runs / "image" / "generator.safetensors")
    frames, labels, rows = interpolate(generator, steps=5, seed=4)
    assert frames.shape == (5, 1, 8, 8) and labels is None and rows == 1
    ends = draw(generator, 2, seed=4)  # gantk sample --seed 4: its first two latents are the end points
    assert torch.allclose(frames[0], ends[0], atol=1e-5) and torch.allclose(frames[-1], ends[1], atol=1e-5)
    with pytest.raises(UsageError, match="at least 2"):
        interpolate(generator, steps=1)


# ------------------------------------------------------------------ slerp
def vectors(dim: int, low: float = -10.0, high: float = 10.0):
    return st.lists(st.floats(low, high, allow_nan=False), min_size=dim, max_size=dim).map(
        lambda v: torch.tensor(v, dtype=torch.float64))


pairs = st.integers(2, 16).flatmap(lambda d: st.tuples(vectors(d), vectors(d)))
unit = st.floats(0.0, 1.0)


@settings(max_examples=200, deadline=None)
@given(pair=pairs)
def test_slerp_endpoints(pair):
    a, b = pair
    assert torch.allclose(slerp(a, b, 0.0), a, atol=1e-9) and torch.allclose(slerp(a, b, 1.0), b, atol=1e-9)


@settings(max_examples=200, deadline=None)
@given(pair=pairs, t=unit)
def test_slerp_keeps_unit_vectors_on_the_sphere_at_a_constant_angular_speed(pair, t):
    a, b = pair
    assume(a.norm() > 1e-3 and b.norm() > 1e-3)
    a, b = a / a.norm(), b / b.norm()
    omega = torch.acos((a @ b).clamp(-1, 1))
    assume(1e-3 < omega < math.pi - 1e-3)  # not (anti)parallel: the great circle is defined
    point = slerp(a, b, t)
    assert point.norm().item() == pytest.approx(1.0, abs=1e-9)
    assert torch.acos((a @ point).clamp(-1, 1)).item() == pytest.approx(t * omega.item(), abs=1e-6)  # angle tΩ


@settings(max_examples=100, deadline=None)
@given(a=st.integers(1, 8).flatmap(vectors), scale=st.floats(0.1, 10.0), t=unit)
def test_slerp_falls_back_to_lerp_for_parallel_vectors(a, scale, t):
    b = scale * a  # Ω = 0 (or a is zero): no great circle
    assert torch.allclose(slerp(a, b, t), (1 - t) * a + t * b, atol=1e-9)
    assert torch.isfinite(slerp(a, torch.zeros_like(a), t)).all()


@given(count=st.integers(0, 60), limit=st.integers(2, 15))
def test_evenly_spaced_keeps_the_first_and_the_last(count, limit):
    items = list(range(count))
    picked = evenly_spaced(items, limit)
    assert len(picked) == min(count, limit) and picked == sorted(set(picked))
    if count:
        assert picked[0] == 0 and picked[-1] == count - 1


# ------------------------------------------------------------------ the page in a real browser
IMAGE_CHECK = """<script>
window.addEventListener("load", function () {  // after every image has loaded or failed
  var lines = Array.prototype.map.call(document.images, function (img) {
    var range = "unread";
    try {  // drawing decodes the image; reading it back needs --allow-file-access-from-files
      var canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth;
      canvas.height = img.naturalHeight;
      var context = canvas.getContext("2d");
      context.drawImage(img, 0, 0);
      var data = context.getImageData(0, 0, canvas.width, canvas.height).data, low = 255, high = 0;
      for (var i = 0; i < data.length; i += 4) { low = Math.min(low, data[i]); high = Math.max(high, data[i]); }
      range = String(high - low);
    } catch (error) { range = error.name; }
    return [img.getAttribute("src"), img.complete, img.naturalWidth, img.naturalHeight, range].join(" ");
  });
  var out = document.createElement("pre");
  out.id = "image-check";
  out.textContent = lines.join("\\n");
  document.body.appendChild(out);
});
</script>
"""


def chromium(*args: str, user_data: Path) -> subprocess.CompletedProcess:
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={user_data}"]
    return subprocess.run([str(CHROMIUM), *flags, *args], capture_output=True, text=True, timeout=120)


def test_the_page_renders_in_headless_chromium(runs, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium not installed (apt-get install chromium); .ci/run installs it")
    page = build_report(runs / "ring8", tmp_path / "report")
    expected = [src for sources in read_page(page).images.values() for src in sources]
    # A test copy of the page with a script that draws each image on a canvas and writes into the DOM whether
    # it loaded, its natural size and the range of its red channel (0 for a blank or undecodable picture).
    check = page.with_name("check.html")
    check.write_text(page.read_text(encoding="utf-8").replace("</body>", IMAGE_CHECK + "</body>"), encoding="utf-8")
    dumped = chromium("--allow-file-access-from-files", "--run-all-compositor-stages-before-draw",
                      "--virtual-time-budget=5000", "--dump-dom", check.as_uri(), user_data=tmp_path / "profile")
    found = re.search(r'<pre id="image-check">(.*?)</pre>', dumped.stdout, re.S)
    assert found, f"chromium wrote no image check (rc {dumped.returncode}): {dumped.stderr[-2000:]}"
    states = [line.split() for line in found.group(1).strip().splitlines()]
    assert [state[0] for state in states] == expected
    assert all(state[1] == "true" and int(state[2]) > 0 and int(state[3]) > 0 and state[4].isdigit()
               and int(state[4]) > 0 for state in states), states
    # The real page, script-free, as a screenshot: not blank, and the plots' blue lines and points are drawn.
    shot = tmp_path / "page.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri(), user_data=tmp_path / "profile")
    assert shot.is_file(), taken.stderr[-2000:]
    picture = Image.open(shot).convert("RGB")
    assert picture.size == (1200, 3000)
    low, high = picture.convert("L").getextrema()
    assert high - low > 100
    pixels = np.asarray(picture, dtype=np.int32)
    blue = int((np.abs(pixels - np.array([31, 119, 180])) < 25).all(axis=-1).sum())  # matplotlib's tab:blue
    assert blue > 500  # the loss and metric curves are drawn
