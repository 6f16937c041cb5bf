"""Pictures of samples: image grids, and plots for 1-D and 2-D vector data; samples written to files.

Images use torchvision's grid (values in [-1, 1] mapped to [0, 1]). 1-D samples become a
histogram over the real data's histogram; 2-D samples a scatter plot over the real points.
During training the ``pictures`` monitor writes ``samples/step_XXXXXX.png`` from the fixed noise
every ``--sample-every`` steps; ``gantk sample`` and ``gantk interpolate`` write through
:func:`write_samples` (a picture, a NumPy archive or safetensors); folders of PNG files and GIFs are
:mod:`gantk.plugins.tools.image_files`'.

matplotlib, which draws the plots (here, in the interpolation and in the report), is optional: the
extra ``gantk[plots]``. Without it :func:`pyplot` raises one paragraph saying how to install it,
and the monitor keeps 1-D/2-D samples as ``samples/step_XXXXXX.npz``, saying so once per run.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import torch
from torch import Tensor

import gantk
from gantk.engine.atomic_files import write_atomic
from gantk.engine.safetensors_io import write_safetensors
from gantk.engine.sampling import sample_grid
from gantk.errors import GantkError, UsageError
from gantk.protocols import DataSpec, MonitorSetup, signed_unit

OUTPUT_SUFFIXES = (".png", ".npz", ".safetensors")
#: real points drawn under 1-D and 2-D samples
REFERENCE_POINTS = 2000
#: How to get matplotlib, which gantk installs only with this extra.
PLOTS_INSTALL = "pip install 'gantk[plots]'"
NO_MATPLOTLIB = ("This needs matplotlib, which is not installed: gantk draws the histograms and scatter plots of 1-D "
                 "and 2-D samples, their interpolations and the curves of 'gantk report' with it (image grids do "
                 f"not need it). Install it with {PLOTS_INSTALL} (or pip install matplotlib) and run the command "
                 "again; 'gantk sample' and 'gantk interpolate' can also write the raw values with --out FILE.npz.")


def save_samples(samples: Tensor, spec: DataSpec, path: Path, *, reference: Tensor | None = None,
                 nrow: int | None = None, title: str = "") -> Path:
    """Save ``samples`` (B, *spec.shape) as a PNG suited to the data kind; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = samples.detach().float().cpu()
    if spec.is_image:
        from gantk.plugins.tools.image_files import picture

        picture(sample_grid(samples, nrow)).save(path)  # the grid TensorBoard gets too (gantk.engine.sampling)
        return path
    _save_plot(samples, spec, path, reference, title)
    return path


def plots_available() -> bool:
    """Whether matplotlib can be imported (it comes with the extra ``gantk[plots]``)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed); a GantkError without matplotlib."""
    try:
        import matplotlib
    except ImportError as error:
        raise GantkError(NO_MATPLOTLIB) from error
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure, out: Path) -> Path:
    """Write a matplotlib figure to ``out`` (folders made as needed) and close it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out)
    pyplot().close(figure)
    return out


def _save_plot(samples: Tensor, spec: DataSpec, path: Path, reference: Tensor | None, title: str) -> None:
    figure, axes = pyplot().subplots(figsize=(4.5, 4.5), dpi=100)
    reference = reference.detach().float().cpu() if reference is not None else None
    if spec.shape[0] == 1:
        values = samples[:, 0]
        low, high = _range(values, reference[:, 0] if reference is not None else None)
        bins = torch.linspace(low, high, 51).tolist()
        if reference is not None:
            axes.hist(reference[:, 0].numpy(), bins=bins, density=True, alpha=0.45, color="tab:gray", label="real")
        axes.hist(values.numpy(), bins=bins, density=True, alpha=0.65, color="tab:blue", label="generated")
        axes.set_xlabel("x")
        axes.set_ylabel("density")
        axes.legend(loc="upper right")
    else:
        if reference is not None:
            axes.scatter(reference[:, 0].numpy(), reference[:, 1].numpy(), s=3, c="tab:gray", alpha=0.3, label="real")
        axes.scatter(samples[:, 0].numpy(), samples[:, 1].numpy(), s=3, c="tab:blue", alpha=0.7, label="generated")
        axes.set_aspect("equal", adjustable="datalim")
        axes.legend(loc="upper right", markerscale=4)
    if title:
        axes.set_title(title)
    save_figure(figure, path)


def _range(values: Tensor, reference: Tensor | None) -> tuple[float, float]:
    both = values if reference is None else torch.cat([values, reference])
    finite = both[torch.isfinite(both)]
    if finite.numel() == 0:
        return -1.0, 1.0
    low, high = torch.quantile(finite, 0.001).item(), torch.quantile(finite, 0.999).item()
    pad = 0.1 * (high - low) + 1e-3
    return low - pad, high + pad


def write_samples(samples: Tensor, labels: Tensor | None, spec, out: Path, nrow: int | None = None) -> Path:
    """``.png``: a picture (grid, histogram or scatter); ``.npz``/``.safetensors``: the raw values."""
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise UsageError(f"Cannot write samples to '{out}': use a file name ending in "
                         f"{', '.join(OUTPUT_SUFFIXES)} (a picture, a NumPy archive, or safetensors), or, with "
                         "gantk sample, a folder path ending in '/' (one PNG file per sample).")
    if suffix == ".png":
        return save_samples(samples, spec, out, nrow=nrow)
    arrays = {"samples": samples}
    if labels is not None:
        arrays["labels"] = labels
    if suffix == ".safetensors":
        write_safetensors(out, arrays, {"format": "pt", "gantk.kind": "samples"})
        return out
    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **{k: v.numpy() for k, v in arrays.items()})
    write_atomic(out, buffer.getvalue())
    return out


class SamplePictures:
    """Writes each fixed-noise sample set of a run as ``samples/step_XXXXXX.png`` (a row per class when conditional).

    1-D/2-D samples without matplotlib are written as ``samples/step_XXXXXX.npz`` (their raw values) instead.
    """

    def __init__(self, setup: MonitorSetup) -> None:
        self.spec, self.folder, self.nrow = setup.spec, setup.run_dir / "samples", setup.grid_row
        samples = setup.dataset.samples
        self.reference = signed_unit(samples[:REFERENCE_POINTS]) if samples is not None and not self.spec.is_image \
            else None
        self.drawn = self.spec.is_image or plots_available()
        if not self.drawn:
            print(f"gantk: matplotlib is not installed, so the {self.spec.shape[0]}-D samples are kept as raw values, "
                  f"samples/step_XXXXXX.npz, instead of plots; {PLOTS_INSTALL} draws them.", file=sys.stderr,
                  flush=True)

    def __call__(self, samples: Tensor, step: int) -> dict[str, float]:
        if self.drawn:
            save_samples(samples, self.spec, self.folder / f"step_{step:06d}.png", reference=self.reference,
                         title=f"step {step}", nrow=self.nrow)
        else:
            write_samples(samples.detach().float().cpu(), None, self.spec, self.folder / f"step_{step:06d}.npz")
        return {}


@gantk.hookimpl
def register_monitors(register):
    register("pictures", SamplePictures, summary="A picture of the fixed-noise samples every --sample-every steps")
