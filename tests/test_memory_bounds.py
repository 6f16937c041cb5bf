"""Allocation is bounded by a check before it happens: forged exports, absurd sizes and --max-memory.

Forged generator files are refused from the meta-device build and the file's header alone; a
subprocess measures that its peak resident memory grows by less than 300 MB over the baseline of
importing torch (a CUDA build of torch alone takes ~500 MB resident). Training, data sets and
sampling refuse sizes that do not fit with a message naming the estimate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import gantk
from gantk import memory_budget
from gantk.engine.export import export_generator, load_generator
from gantk.engine.trainer import Trainer
from gantk.errors import GantkError, UsageError
from gantk.protocols import ComponentRecord, DataSpec

sys.path.insert(0, str(Path(__file__).parent))
from engine_helpers import tiny_config  # noqa: E402

MIB = 1024 ** 2
#: The tests behave as on a machine with at most this much free memory (one 65536x65536 sample takes 16 GiB).
MACHINE = "16G"


@pytest.fixture(autouse=True)
def _modest_machine():
    """Every test sees at most 16 GiB free, so that no absurd size is ever allocated on a larger machine."""
    with memory_budget.limited(MACHINE):
        yield


def _export(path: Path, spec: DataSpec, **options) -> Path:
    """A real (small) dcgan generator export for ``spec``, built with ``options``."""
    generator = gantk.get_registry().get("generator", "dcgan").create(spec, **options)
    record = ComponentRecord("generator", "dcgan", "gantk", gantk.__version__, dict(generator.options))
    return export_generator(path, generator, record, spec)


def _forge_config(path: Path, **options) -> Path:
    """Rewrite an export's config (its tensors unchanged) so that it claims other factory options."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata())
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    config = json.loads(metadata["gantk.config"])
    config["options"].update(options)
    config["z_dim"] = config["options"]["z_dim"]
    metadata["gantk.config"] = json.dumps(config)
    save_file(tensors, str(path), metadata=metadata)
    return path


@pytest.fixture
def forged_z_dim(tmp_path) -> Path:
    """An 8x8 generator whose config claims z_dim=2,000,000 (a 2e6x... first layer: ~8 GB if built)."""
    path = _export(tmp_path / "z.safetensors", DataSpec((1, 8, 8), 0, "digits"), z_dim=2, width=2)
    return _forge_config(path, z_dim=2_000_000)


@pytest.fixture
def huge_images(tmp_path) -> Path:
    """A self-consistent generator of 65536x65536 images: small weights (width 1), one sample ~16 GiB."""
    return _export(tmp_path / "huge.safetensors", DataSpec((1, 65536, 65536), 0, "forged"), z_dim=2, width=1)


def test_a_forged_z_dim_is_refused_naming_the_first_differing_tensor(forged_z_dim):
    with pytest.raises(GantkError) as caught:
        load_generator(forged_z_dim)
    message = str(caught.value)
    assert "net.1.weight" in message and "[2000000, " in message and "nothing was loaded" in message


def test_a_huge_image_size_is_refused_before_building(huge_images):
    with pytest.raises(UsageError, match="65536x65536.*needs about 32 GiB of memory"):
        load_generator(huge_images)


def test_a_file_lacking_a_tensor_is_refused_naming_it(tmp_path):
    path = _export(tmp_path / "g.safetensors", DataSpec((1, 8, 8), 0, "digits"), z_dim=2, width=2)
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        metadata, names = dict(handle.metadata()), list(handle.keys())
        tensors = {name: handle.get_tensor(name) for name in names[1:]}
    save_file(tensors, str(path), metadata=metadata)
    with pytest.raises(GantkError, match=f"lacks the tensor '{names[0]}'"):
        load_generator(path)


def test_forged_files_are_refused_with_little_memory(forged_z_dim, huge_images):
    """In a fresh process: peak resident memory grows by < 300 MB over importing torch and gantk."""
    script = textwrap.dedent(f"""
        import resource, sys
        import torch, gantk, gantk.engine.export
        from gantk.errors import GantkError
        from gantk.memory_budget import limited
        baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for path in ({str(forged_z_dim)!r}, {str(huge_images)!r}):
            try:
                with limited({MACHINE!r}):
                    gantk.load_generator(path)
                sys.exit("loaded " + path)
            except GantkError:
                pass
        print(baseline, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    baseline_kib, peak_kib = map(int, result.stdout.split())
    assert (peak_kib - baseline_kib) * 1024 < 300 * MIB, (baseline_kib, peak_kib)


def test_a_genuine_export_still_loads_and_samples(tmp_path):
    path = _export(tmp_path / "g.safetensors", DataSpec((1, 8, 8), 0, "digits"), z_dim=4, width=2)
    generator = load_generator(path)
    assert generator(torch.zeros(3, 4)).shape == (3, 1, 8, 8)


def test_max_memory_refuses_a_tiny_run_naming_the_estimate(tmp_path):
    with pytest.raises(UsageError) as caught:
        Trainer(tiny_config(max_memory="1M", gen_options={"width": 32}, disc_options={"width": 32}), tmp_path / "run",
                show_progress=False)
    message = str(caught.value)
    assert message.startswith("This run (") and "more than the 1 MiB that --max-memory allows" in message
    assert "weights, gradients and optimizer state" in message and "activations for a batch of 16" in message


def test_max_memory_is_checked_when_the_config_is_made():
    with pytest.raises(UsageError, match="--max-memory takes an amount of memory such as 8G"):
        tiny_config(max_memory="lots")


@pytest.mark.parametrize("overrides, named", [
    ({"gen_options": {"width": 8, "z_dim": 1_000_000_000}}, "networks' weights"),
    ({"num_samples": 1_000_000_000}, "1,000,000,000 sample pictures"),
    ({"batch_size": 100_000_000}, "a batch of 100,000,000"),
])
def test_absurd_training_sizes_are_refused_before_allocating(tmp_path, overrides, named):
    with pytest.raises(UsageError, match=named):
        Trainer(tiny_config(**overrides), tmp_path / "run", show_progress=False)


def test_a_huge_image_size_on_mnist5k_is_refused_by_the_data_set(tmp_path):
    with pytest.raises(UsageError, match=r"The data set 'mnist5k' \(5,000 images at 4096x4096\) needs about"):
        Trainer(tiny_config(dataset="mnist5k", image_size=4096), tmp_path / "run", show_progress=False)


def test_a_huge_mixture_is_refused():
    with pytest.raises(UsageError, match="num_samples=100,000,000,000"):
        gantk.get_registry().create("dataset", "ring8", data_root=None, image_size=None, download=False,
                                    num_samples=10 ** 11)


def test_sample_refuses_a_huge_n(tmp_path, cli):
    path = _export(tmp_path / "g.safetensors", DataSpec((1, 8, 8), 0, "digits"), z_dim=4, width=2)
    result = cli("sample", str(path), "--n", "1000000000000", "--out", str(tmp_path / "s.png"))
    assert result.exit_code == 2, result.output
    assert "Drawing 1,000,000,000,000 samples needs about" in result.output
    assert not (tmp_path / "s.png").exists()
    result = cli("sample", str(path), "--n", "100", "--max-memory", "10K", "--out", str(tmp_path / "s.png"))
    assert result.exit_code == 2 and "--max-memory allows" in result.output, result.output


def test_sampling_in_chunks_gives_the_same_samples_as_one_pass(tmp_path):
    from gantk.engine.sampling import draw

    generator = load_generator(_export(tmp_path / "g.safetensors", DataSpec((1, 8, 8), 0, "d"), z_dim=4, width=2))
    # the same up to float rounding: a convolution's CPU kernel may sum in another order for another batch size
    torch.testing.assert_close(draw(generator, 10, seed=3, batch_size=3), draw(generator, 10, seed=3, batch_size=10),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("text, nbytes", [("8G", 8 * 1024 ** 3), ("512M", 512 * MIB), ("1.5GiB", 3 * 1024 ** 3 // 2),
                                          ("64k", 65536), ("1000", 1000), ("2 MB", 2 * MIB)])
def test_sizes_are_read_in_units_of_1024(text, nbytes):
    assert memory_budget.parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["", "0", "-1G", "8X", "G", "true", "nan"])
def test_bad_sizes_are_usage_errors(text):
    with pytest.raises(UsageError, match="--max-memory"):
        memory_budget.parse_size(text)


def test_the_tightest_limit_applies_and_is_named():
    with memory_budget.limited("1M"), memory_budget.limited("1G"):
        with pytest.raises(UsageError, match="needs about 2 MiB of memory, more than the 1 MiB that --max-memory allows"):
            memory_budget.check_fits(2 * MIB, "This", "Lower it.")
    memory_budget.check_fits(2 * MIB, "This", "Lower it.")  # the machine has more


def test_allocation_failures_become_one_paragraph():
    with pytest.raises(GantkError, match=r"Drawing ran out of memory \(.*can't allocate memory.*\)\. Ask for fewer"):
        with memory_budget.allocation_failures_reported("Drawing", "Ask for fewer."):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 800000000000 bytes.")
    with pytest.raises(RuntimeError, match="unrelated"):
        with memory_budget.allocation_failures_reported("Drawing", "Ask for fewer."):
            raise RuntimeError("unrelated")
