"""What the three Hydra entry points (train, infer, evaluate) share for a user's mistakes: one line
`prog: error: ...` on stderr and exit status 2, for Hydra's own override grammar and composition
errors too (checked before Hydra runs, with the quoting that works), and for keys left unset."""

from __future__ import annotations

import difflib
import re
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from hydra import compose, initialize_config_dir
from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override, OverrideType
from hydra.errors import HydraException, OverrideParseException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
USAGE_ERROR = 2  # the exit status of a run that could not start


def fail(prog: str, message: object, status: int = USAGE_ERROR) -> NoReturn:
    """Print `prog: error: message` to stderr and exit with `status`."""
    print(f"{prog}: error: {message}", file=sys.stderr, flush=True)
    sys.exit(status)


def error_line(err: BaseException) -> str:
    """An error's message; one re-raised from a DataLoader worker carries the worker's traceback in
    its text, of which only the last line (the worker's own message) is kept."""
    text = str(err).strip()
    if "Original Traceback" in text:
        last = text.splitlines()[-1]
        text = last.split(": ", 1)[1] if ": " in last else last
    return text or type(err).__name__


def hydra_error_line(err: BaseException) -> str:
    """A Hydra/OmegaConf error on one line: its lines joined, a list of options comma-separated, the
    search path and documentation links left out, the OmegaConf cause appended."""
    parts, options = [], []
    for line in str(err).splitlines():
        if line.startswith("Config search path"):
            break
        if line.startswith("\t"):
            options.append(line.strip())
            continue
        line = line.strip().rstrip(".:")
        if line and not line.startswith(("See https://", "full_key:", "object_type=", "reference_type=")):
            parts.append(line)
    text = "; ".join(parts)
    if options:
        text += ": " + ", ".join(options)
    if isinstance(err, OverrideParseException) and err.override not in text:
        text = f"override {err.override!r}: {text}"
    cause = err.__cause__
    if isinstance(cause, OmegaConfBaseException) and str(cause).strip():
        text += f" ({str(cause).strip().splitlines()[0]})"
    return text


def _parse(args: Sequence[str]) -> list[Override]:
    return OverridesParser.create().parse_overrides(list(args))


def hydra_quoted(arg: str) -> str | None:
    """`key=value` with the value in Hydra's quotes, so that Hydra reads back exactly the value typed
    (non-ASCII letters, '=', '#', quotes, commas, newlines); None when no quoting does."""
    key, sep, value = arg.partition("=")
    if not sep or not key:
        return None
    for quote in ('"', "'"):
        if quote not in value:
            break
    else:
        quote = "'"
    # in Hydra's quoted strings a backslash escapes a quote: double those before a quote or the end
    body = re.sub(r"(\\+)(?=['\"]|$)", lambda m: m[1] * 2, value)
    body = body.replace(quote, "\\" + quote)
    candidate = f"{key}={quote}{body}{quote}"
    try:
        (override,) = _parse([candidate])
        ok = override.value() == value
    except (HydraException, ValueError):
        ok = False
    return candidate if ok else None


def shell_word(text: str) -> str:
    """`text` as one shell word on one line: in single quotes, double quotes when it holds a single
    quote, or bash's $'...' when it holds a newline or another control character."""
    if text.isprintable():
        if "'" not in text:
            return shlex.quote(text)
        return '"' + re.sub(r'(["\\$`])', r"\\\1", text) + '"'
    escaped = "".join({"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r"}.get(c, c)
                      if c.isprintable() or c in "\n\t\r" else f"\\x{ord(c):02x}" for c in text)
    return f"$'{escaped}'"


def grammar_error(arg: str, err: OverrideParseException) -> str:
    """One line for an override Hydra cannot parse, with the quoting that works when the value is
    meant as a string (a value opening a list or dict, `[1`, is a typo in it: Hydra's words then)."""
    shown = arg if arg.isprintable() else repr(arg)
    value = arg.partition("=")[2].lstrip()
    quoted = None if value.startswith(("[", "{")) else hydra_quoted(arg)
    if quoted is None:
        return hydra_error_line(err)
    return (f"cannot read the argument {shown} as it is: a value with non-ASCII letters, '=', '#', "
            f"',', quotes or a newline needs Hydra's quotes; write it as {shell_word(quoted)}")


def _keys_near(config: Any, dotted: str) -> tuple[str, list[str]]:
    """(the parent path of `dotted`, the keys beside it in `config`)."""
    parent, _, _ = dotted.rpartition(".")
    node = OmegaConf.select(config, parent) if parent else config
    keys = [str(k) for k in node.keys() if k not in ("defaults", "hydra")] if isinstance(node, DictConfig) else []
    return parent, keys


def unknown_key(config: Any, dotted: str, arg: str | None = None) -> str:
    """An unknown key with a close match among the keys beside it: 'unknown argument ...; arguments: ...'
    for a fixed config; for an open one (`arg` given), how to add it as a new key."""
    parent, keys = _keys_near(config, dotted)
    close = difflib.get_close_matches(dotted.rpartition(".")[2], keys, n=1)
    hint = f"did you mean {parent + '.' if parent else ''}{close[0]}? " if close else ""
    if arg is not None:
        return f"Could not override {dotted!r}: no such key; {hint}(to add it as a new key: +{arg.lstrip('+~')})"
    return f"unknown argument {dotted!r}; {hint}arguments: {', '.join(keys)}"


def _is_group(name: str, config_dir: Path) -> bool:
    return (config_dir / name).is_dir() or bool(ConfigStore.instance().repo.get(name))


@dataclass(frozen=True)
class EntryPoint:
    """One Hydra entry point's command line: its name (`prog`), its config, its usage line.
    `open_config`: `+key=value` may add keys (train's model/mel groups); otherwise every key there
    is stands in the config file, and any other is an unknown argument."""

    prog: str
    config_name: str
    usage: str
    open_config: bool = False
    config_dir: Path = CONFIG_DIR

    def fail(self, message: object, status: int = USAGE_ERROR) -> NoReturn:
        fail(self.prog, message, status)

    def _compose(self, overrides: Sequence[str]) -> DictConfig:
        with initialize_config_dir(config_dir=str(self.config_dir), version_base="1.3"):
            return compose(self.config_name, overrides=list(overrides))

    def check_argv(self, argv: Sequence[str]) -> None:
        """Parse and compose `argv`'s overrides as Hydra will, and `fail` in one line where that fails:
        a value Hydra cannot read (with the quoting that works), an unknown key (with the closest one),
        a missing group option. Hydra flags (`--cfg`, `-m`, ...) and `hydra.` overrides are Hydra's."""
        if any(arg.startswith("-") for arg in argv):
            return
        args = [arg for arg in argv if not arg.lstrip("+~").startswith(("hydra.", "hydra/"))]
        parsed = []
        for arg in args:
            try:
                (override,) = _parse([arg])
            except OverrideParseException as err:
                self.fail(grammar_error(arg, err))
            if override.is_sweep_override():
                key = arg.partition("=")[0]
                quoted = hydra_quoted(arg)
                hint = f", or {shell_word(quoted)} for one value with a comma in it" if quoted else ""
                self.fail(f"{arg} is a sweep over several values (--multirun); write {key}=[a,b] for a list{hint}")
            parsed.append(override)
        try:
            self._compose(args)
        except (HydraException, OmegaConfBaseException) as err:
            named = re.search(r"Could not override '([^']+)'", str(err))
            if named is None:
                self.fail(hydra_error_line(err))
            others = [a for a, o in zip(args, parsed) if o.key_or_group != named[1]]
            try:
                config = self._compose(others)
            except (HydraException, OmegaConfBaseException):
                self.fail(hydra_error_line(err))
            given = [a for a, o in zip(args, parsed) if o.key_or_group == named[1]]
            arg = given[-1] if given else named[1]
            self.fail(unknown_key(config, named[1], arg if self.open_config else None))
        if self.open_config:
            return
        added = [o for o in parsed if o.type == OverrideType.ADD and not _is_group(o.key_or_group, self.config_dir)]
        if added:
            base = self._compose([a for a, o in zip(args, parsed) if o not in added])
            for override in added:
                if override.key_or_group.rpartition(".")[2] not in _keys_near(base, override.key_or_group)[1]:
                    self.fail(unknown_key(base, override.key_or_group))

    def options(self, cfg: DictConfig) -> dict[str, Any]:
        """The composed config as plain values; a key left unset (`???`) or a value that does not
        resolve is one line (`set input=... output=... (usage: ...)`)."""
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            self.fail(f"set {' '.join(f'{k}=...' for k in missing)} ({self.usage})")
        try:
            return OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        except OmegaConfBaseException as err:
            self.fail(hydra_error_line(err))

