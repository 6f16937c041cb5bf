"""gantk generators on the Hugging Face Hub: ``from_pretrained``, ``save_pretrained``, ``push_to_hub``.

Needs the optional extra ``gantk[hub]`` (huggingface_hub); importing this module without it is a
usage error that says how to install it. :class:`PretrainedGenerator` is a ``huggingface_hub``
``ModelHubMixin``: the Hub's own ``from_pretrained``/``push_to_hub`` machinery, with gantk's model
directory (``config.json``, ``model.safetensors``, ``README.md``, ``samples.png``; see
:mod:`gantk.engine.model_dir`) as what is saved and loaded. Loading builds the network by its
registry name from the weights file's header, as :func:`gantk.load_generator` does, so
``from_pretrained`` returns the gantk generator module itself::

    from gantk.engine.hub import PretrainedGenerator

    PretrainedGenerator("runs/latest").push_to_hub("me/digits-dcgan")       # export and upload a run
    generator = PretrainedGenerator.from_pretrained("me/digits-dcgan")      # elsewhere: download and load
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from gantk.errors import UsageError

try:
    from huggingface_hub import ModelHubMixin, snapshot_download
except ImportError as error:  # the optional extra is not installed
    raise UsageError("gantk.engine.hub (from_pretrained, save_pretrained, push_to_hub) needs the huggingface_hub "
                     "package, which is not installed. Install it with pip install 'gantk[hub]' (or pip install "
                     "huggingface_hub). gantk.load_generator reads a model directory without it.") from error

from gantk.engine.export import load_generator
from gantk.engine.model_dir import CONFIG_FILE, FILES, MODEL_FILE, is_model_directory, model_file
from gantk.engine.run_export import fill_model_directory

#: The files ``from_pretrained`` downloads from a Hub repository (the card and the picture are not needed to load).
LOADED_FILES = [CONFIG_FILE, MODEL_FILE]


class PretrainedGenerator(ModelHubMixin, library_name="gantk", tags=["gantk", "gan"]):
    """A gantk generator for the Hub's ``save_pretrained``/``push_to_hub``, and its ``from_pretrained``.

    ``PretrainedGenerator(source)`` takes a run directory (its newest checkpoint is exported, the EMA
    weights unless ``ema=False``, as ``gantk export`` does) or a model directory gantk wrote (copied as
    it is). ``from_pretrained(repo_id_or_directory)`` returns the generator module, in eval mode on
    ``device``.
    """

    def __init__(self, source: str | Path, *, ema: bool = True) -> None:
        self.source, self.ema = Path(source), ema

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the model directory's files into ``save_directory`` (the Hub's ``save_pretrained`` made it)."""
        save_directory = Path(save_directory)
        if is_model_directory(self.source):
            model_file(self.source)  # refuses a directory without its weights
            for name in FILES:
                if (self.source / name).is_file():
                    shutil.copyfile(self.source / name, save_directory / name)
            return
        fill_model_directory(save_directory, self.source, ema=self.ema)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None = None, cache_dir: str | Path | None = None,
                         force_download: bool = False, local_files_only: bool = False,
                         token: str | bool | None = None, device: Any = "cpu", **ignored: Any):
        """The generator of a local model directory, or of a Hub repository (only its config and weights are
        downloaded). ``ignored``: what the Hub's ``from_pretrained`` passes on from config.json and older
        signatures (proxies, resume_download, ...)."""
        directory = Path(model_id)
        if not directory.is_dir():
            directory = Path(snapshot_download(repo_id=model_id, revision=revision, cache_dir=cache_dir,
                                               force_download=force_download, local_files_only=local_files_only,
                                               token=token, allow_patterns=LOADED_FILES))
        return load_generator(directory, device=device)


__all__ = ["PretrainedGenerator"]
