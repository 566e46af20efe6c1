"""`train.init_from`: a fresh run that starts from NVIDIA's release folder (generator; discriminators and
both AdamW states where `bigvgan_discriminator_optimizer.pt` is there), one of our training checkpoints,
or a generator alone (ours, or HiFi-GAN's: file or folder, its `do_` file not read); its model, mel and
discriminator settings become the run's.

NVIDIA's optimiser states are indexed by parameter position: `optim_g` in its generator's parameter
order, `optim_d` in `chain(mrd.parameters(), mpd.parameters())`. Both are mapped onto ours by name
(the saved state dicts list the parameters in that order, buffers between them), never by position.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from ..checkpoint import (NVIDIA_CONFIG, NVIDIA_WEIGHTS, CheckpointError, check_state_dict, generator_state,
                          load_checkpoint, load_model_keys, read_discriminator_record, read_model_config)
from ..layers.weight_norm import G, LEGACY_G, LEGACY_V, V, adapt_state_dict
from ..models.discriminators import DEFAULTS, with_defaults
from .resume import TRAINING_KEYS
from .step import GanStep

log = logging.getLogger(__name__)

NVIDIA_TRAINING = "bigvgan_discriminator_optimizer.pt"  # mpd, mrd, optim_g, optim_d, steps, epoch
SCHEDULES = ("restart", "continue")
IGNORED = {"init"}  # how fresh weights would be initialised: moot for loaded ones


@dataclass
class InitSource:
    """What a checkpoint gives a fresh run (tensors on the CPU)."""

    path: str
    kind: str  # "nvidia" (release folder), "training" (ours), "generator" (weights alone)
    model: dict  # complete {"generator", "mel"} settings
    discriminator: dict | None  # discriminator settings, None where the checkpoint records none
    generator: dict  # state dict in our layout
    discriminators: dict | None = None  # {our name ("mpd", "cqtd"/"mrd"): state dict}
    optim_g: dict | None = None
    optim_d: dict | None = None
    g_order: list[str] | None = None  # NVIDIA's parameter order, in our names (None: ours already)
    d_order: list[str] | None = None
    schedules: dict | None = None  # our sched_g / sched_d states
    step: int = 0  # steps done: where `train.init_schedule=continue` carries on

    def pieces(self) -> str:
        """What it holds, for the log."""
        parts = ["generator"]
        if self.discriminators:
            parts.append("discriminators " + " + ".join(self.discriminators))
        if self.optim_g is not None:
            parts.append("both optimiser states")
        return ", ".join(parts)


def our_key(key: str) -> str:
    """A state-dict key in our naming: legacy weight-norm `weight_g`/`weight_v` become the parametrization's."""
    for old, new in ((LEGACY_G, G), (LEGACY_V, V)):
        if key == old or key.endswith("." + old):
            return key[: len(key) - len(old)] + new
    return key


def read_init_source(spec: str) -> InitSource:
    """The checkpoint `spec` names: a path (folder or file) or a hub id (see vocoder.hub)."""
    from ..hub import GENERATOR_FILES, HubError, resolve_checkpoint

    try:
        path = resolve_checkpoint(spec, files=(*GENERATOR_FILES, NVIDIA_TRAINING))
    except HubError:  # a hub snapshot without the training state: the generator alone
        path = resolve_checkpoint(spec)
    folder = path if path.is_dir() else path.parent
    nvidia = (folder / NVIDIA_WEIGHTS).is_file() and (folder / NVIDIA_CONFIG).is_file()
    if nvidia and (path.is_dir() or path.name == NVIDIA_WEIGHTS):
        return _read_nvidia(spec, folder)
    if path.is_dir():  # a HiFi-GAN folder (vocoder.hifigan_checkpoint): its generator; no discriminators
        return _generator_alone(spec, path)
    ckpt = load_checkpoint(path)
    if all(k in ckpt for k in TRAINING_KEYS):
        return _read_training(spec, path, ckpt)
    return _generator_alone(spec, path)


def _generator_alone(spec: str, path: Path) -> InitSource:
    generator, mel, _ = load_model_keys(path)
    return InitSource(spec, "generator", {"generator": generator.config, "mel": mel}, None, generator.state_dict())


def _read_nvidia(spec: str, folder: Path) -> InitSource:
    generator, mel, keys = load_model_keys(folder)
    flat = json.loads((folder / NVIDIA_CONFIG).read_text())
    if flat.get("use_mbd_instead_of_mrd"):
        raise CheckpointError(f"{folder / NVIDIA_CONFIG}: use_mbd_instead_of_mrd (the multi-band discriminator) "
                              "is not supported here")
    settings = with_defaults({k: flat[k] for k in DEFAULTS if k in flat})
    source = InitSource(spec, "nvidia", {"generator": generator.config, "mel": mel}, _json(settings),
                        generator.state_dict())
    training = folder / NVIDIA_TRAINING
    if not training.is_file():
        return source
    state = load_checkpoint(training)
    missing = [k for k in ("mpd", "mrd", "optim_g", "optim_d", "steps") if k not in state]
    if missing:
        raise CheckpointError(f"{training} is not BigVGAN's discriminator/optimiser state: it lacks "
                              f"{', '.join(missing)}")
    second = "cqtd" if settings["use_cqtd_instead_of_mrd"] else "mrd"
    source.discriminators = {"mpd": state["mpd"], second: state["mrd"]}
    source.optim_g, source.optim_d = state["optim_g"], state["optim_d"]
    source.g_order = [our_key(k) for k in keys]
    source.d_order = [f"{second}.{our_key(k)}" for k in state["mrd"]] + [f"mpd.{our_key(k)}" for k in state["mpd"]]
    source.step = int(state["steps"]) + 1  # NVIDIA's `steps` is the index of the step it was saved after
    return source


def _read_training(spec: str, path: Path, ckpt: dict) -> InitSource:
    record = read_model_config(ckpt, str(path))
    settings = read_discriminator_record(ckpt)
    return InitSource(spec, "training", record, settings or None, generator_state(ckpt["generator"]),
                      discriminators=_split(ckpt["discriminators"]), optim_g=ckpt["optim_g"],
                      optim_d=ckpt["optim_d"], schedules={"sched_g": ckpt["sched_g"], "sched_d": ckpt["sched_d"]},
                      step=int(ckpt["step"]))


def _split(state: Mapping[str, Any]) -> dict[str, dict]:
    """A ModuleDict's state dict as {child name: its state dict}."""
    out: dict[str, dict] = {}
    for key, value in state.items():
        name, _, rest = key.partition(".")
        out.setdefault(name, {})[rest] = value
    return out


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


# ---------------------------------------------------------------------------- the run's settings


def _differs(given: Any, recorded: Any) -> bool:
    """Whether a config value sets something else than the checkpoint records; in a nested section
    (model.pitch_source) only the keys the config sets count, the checkpoint holding every default."""
    if isinstance(given, dict) and isinstance(recorded, dict):
        return any(k not in recorded or _differs(v, recorded[k]) for k, v in given.items())
    return given != recorded


def run_settings(config: dict, source: InitSource) -> dict[str, dict]:
    """The run's model, mel and discriminator sections: the checkpoint's, with what `config` sets on
    top where it agrees; a ValueError names every key `config` sets to something else."""
    theirs = {"model": source.model["generator"], "mel": source.model["mel"], "discriminator": source.discriminator}
    merged, clashes = {}, []
    for group, recorded in theirs.items():
        given = {k: v for k, v in (config.get(group) or {}).items() if k != "defaults"}
        if recorded is None:
            if not given:
                raise ValueError(f"train.init_from={source.path} records no discriminator settings (a generator "
                                 "alone): pick them, e.g. discriminator=bigvgan_v2")
            merged[group] = given
            continue
        recorded = _json(recorded)
        for key, value in _json(given).items():
            if key in recorded and key not in IGNORED and _differs(value, recorded[key]):
                clashes.append(f"{group}.{key} (checkpoint {json.dumps(recorded[key])}, "
                               f"config {json.dumps(value)})")
        merged[group] = {**given, **recorded}
    if clashes:
        raise ValueError(f"train.init_from={source.path} holds another model than the config says: "
                         f"{'; '.join(clashes)}; leave model=, mel= and discriminator= out to take the checkpoint's")
    return merged


# ---------------------------------------------------------------------------- loading into a run


def remap_optimizer(state: Mapping, order: list[str], params: list[tuple[str, nn.Parameter]], what: str) -> dict:
    """An optimiser state dict saved in `order` (parameter names; other names, buffers, skipped)
    re-indexed for `params`; a CheckpointError when the parameters are not the same set."""
    names = [n for n, _ in params]
    known = set(names)
    theirs = [k for k in order if k in known]
    groups = state["param_groups"]
    if sorted(theirs) != sorted(names) or len(groups) != 1 or len(groups[0]["params"]) != len(theirs):
        missing = sorted(known - set(theirs))[:3]
        raise CheckpointError(f"{what}: the optimiser state does not cover this model's parameters"
                              + (f" (e.g. none for {', '.join(missing)})" if missing else ""))
    index = {name: groups[0]["params"][i] for i, name in enumerate(theirs)}
    moments = {j: state["state"][index[n]] for j, n in enumerate(names) if index[n] in state["state"]}
    return {"state": moments, "param_groups": [{**groups[0], "params": list(range(len(names)))}]}


def load_into(gan: GanStep, source: InitSource, schedule: str, learning_rate: float,
              adam_betas: tuple[float, float]) -> int:
    """Put `source`'s weights and optimiser states into `gan`; the step the run starts at.

    schedule "restart": step 0, the learning rate `learning_rate` (decaying by `lr_decay` from
    there), `adam_betas`; AdamW's moments and step counts are the checkpoint's.
    schedule "continue": the checkpoint's step and learning rate go on as if it had never stopped
    (NVIDIA's: the next step at its saved rate, as its train.py resumes, then decaying per step)."""
    if schedule not in SCHEDULES:
        raise ValueError(f"train.init_schedule must be one of {', '.join(SCHEDULES)}, got {schedule!r}")
    gan.generator.load_state_dict(source.generator)
    if source.discriminators is not None:
        for name, d in gan.discriminators.items():
            if name not in source.discriminators:
                raise CheckpointError(f"{source.path} holds no {name} discriminator "
                                      f"({', '.join(source.discriminators)})")
            state = adapt_state_dict(d, source.discriminators[name])
            check_state_dict(d, state, f"{source.path} ({name})")
            d.load_state_dict(state)
    if source.optim_g is None:
        return 0
    for optim, state, order, module, what in ((gan.optim_g, source.optim_g, source.g_order, gan.generator, "generator"),
                                              (gan.optim_d, source.optim_d, source.d_order, gan.discriminators,
                                               "discriminators")):
        if order is not None:
            state = remap_optimizer(state, order, list(module.named_parameters()), f"{source.path} ({what})")
        optim.load_state_dict(state)
    if schedule == "restart":
        for optim, sched in ((gan.optim_g, gan.sched_g), (gan.optim_d, gan.sched_d)):
            for group in optim.param_groups:
                group.update(lr=learning_rate, initial_lr=learning_rate, betas=tuple(adam_betas))
            sched.base_lrs, sched.last_epoch, sched._last_lr = [learning_rate], 0, [learning_rate]
        return 0
    if source.schedules is not None:  # ours: the schedules as saved
        gan.sched_g.load_state_dict(source.schedules["sched_g"])
        gan.sched_d.load_state_dict(source.schedules["sched_d"])
        return source.step
    for optim, sched in ((gan.optim_g, gan.sched_g), (gan.optim_d, gan.sched_d)):
        group = optim.param_groups[0]  # its saved rate, the one NVIDIA's train.py resumes at
        group.setdefault("initial_lr", group["lr"])
        sched.base_lrs, sched.last_epoch, sched._last_lr = [group["initial_lr"]], source.step, [group["lr"]]
    return source.step

