"""Checkpoints by Hugging Face hub id (`nvidia/bigvgan_v2_24khz_100band_256x`): a local path of the same
spelling always wins; otherwise the repo's files come from the hub cache, downloaded when allowed.

`huggingface_hub` does the work: its cache (`HF_HUB_CACHE`, `HF_HOME`), revisions (branch, tag or
commit; `refs/<name>` in the cache), `HF_HUB_OFFLINE=1`, and falling back to the cache when the hub
cannot be reached. NVIDIA's repos hold `bigvgan_generator.pt` and `config.json` (and the
discriminator/optimiser state, fetched only by those who ask for it in `files`); a HiFi-GAN repo holds
a jik876 generator (`g_NNNNNNNN` or `generator*`, `vocoder.hifigan_checkpoint`) beside its `config.json`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import huggingface_hub
from huggingface_hub import constants
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled
from huggingface_hub.utils import validate_repo_id

from . import hifigan_checkpoint
from .checkpoint import NVIDIA_CONFIG, NVIDIA_WEIGHTS, CheckpointError

GENERATOR_FILES = (NVIDIA_WEIGHTS, NVIDIA_CONFIG)
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".json")  # spelled like a file: a path


class HubError(CheckpointError):
    """A hub id that cannot be resolved: not cached and not downloadable, or a repo without the files."""


def is_hub_id(spec: str) -> bool:
    """Whether `spec` is spelled like a hub model id: `owner/name` (one slash, no leading '.', '~' or '/',
    not ending like a checkpoint file)."""
    if not _REPO_ID.fullmatch(spec) or spec.lower().endswith(_FILE_SUFFIXES):
        return False
    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


def resolve_checkpoint(spec: str | os.PathLike, revision: str | None = None,
                       files: Sequence[str] = GENERATOR_FILES) -> Path:
    """A local checkpoint path (file or folder) for `spec`: the path itself when it exists, else the
    hub cache's snapshot folder of the repo `spec` at `revision` (default: main) holding `files`.

    Raises FileNotFoundError for a missing path that is not spelled like a hub id, ValueError for a
    revision given with a local path, HubError (one line) when the hub id cannot be resolved.
    """
    path = Path(spec).expanduser()
    if path.exists():
        if revision is not None:
            raise ValueError(f"revision={revision} applies to hub ids, but {spec} is a local path")
        return path
    name = str(spec)
    if not is_hub_id(name):
        raise FileNotFoundError(f"checkpoint {name} does not exist (neither a local path nor a hub id owner/name)")
    return _snapshot(name, revision, tuple(files))


def _snapshot(repo_id: str, revision: str | None, files: tuple[str, ...]) -> Path:
    """The snapshot folder of `repo_id` at `revision` holding `files`, from the cache or downloaded."""
    at = f"{repo_id} (revision {revision or constants.DEFAULT_REVISION})"
    hifigan = files == GENERATOR_FILES  # a generator alone: a HiFi-GAN one will do
    patterns = list(files) + (list(hifigan_checkpoint.WEIGHT_PATTERNS) if hifigan else [])
    try:
        folder = Path(huggingface_hub.snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as e:
        if constants.is_offline_mode():
            why = "downloads are off (HF_HUB_OFFLINE=1)"
        else:
            cause = e.__cause__ or e.__context__
            detail = f"{type(cause).__name__}: {str(cause).strip().splitlines()[0]}" if cause and str(cause).strip() \
                else type(cause or e).__name__
            why = f"the hub cannot be reached ({detail})"
        raise HubError(f"checkpoint {at}: no such local path, not in the Hugging Face cache "
                       f"{constants.HF_HUB_CACHE}, and {why}") from e
    except HfHubHTTPError as e:  # not found, gated, revision unknown, server error
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise HubError(f"checkpoint {at}: no such local path, and the hub refused it: {first}") from e
    missing = [f for f in files if not (folder / f).is_file()]
    if missing == [NVIDIA_WEIGHTS] and hifigan and _has_hifigan_generator(folder):
        return folder
    if missing:
        raise HubError(f"checkpoint {at}: the hub snapshot {folder} has no {', '.join(missing)} "
                       f"(a BigVGAN repo holds {' and '.join(GENERATOR_FILES)}; a HiFi-GAN one "
                       f"g_NNNNNNNN or generator* and {NVIDIA_CONFIG})")
    return folder


def _has_hifigan_generator(folder: Path) -> bool:
    try:
        return hifigan_checkpoint.find_weights(folder) is not None
    except ValueError:  # several: loading names them
        return True
