"""Run configuration: typed defaults, then the YAML file, then ``--set key=value``.

A config has three sections::

    model: {name: row_lstm, hidden_size: 128, ...}   # a registered model and its builder options
    data:  {name: mnist, val_size: 5000, ...}        # a registered dataset and its options
    train: {epochs: 10, lr: 0.002, ...}              # TrainConfig fields

Every key is checked against the model builder's, dataset builder's or TrainConfig's typed
options, so a misspelt key or a wrong type is reported by name before anything runs. The task
(classify, recognize, segment, generate) follows from the model. The resolved config — every
default filled in — is saved beside every run and inside every checkpoint.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from rnnvision.errors import UserError
from rnnvision.options import check_value

SECTIONS = ("model", "data", "train")
STAGES = "stages"  # a recipe's later stages (load_config)
MAX_IMAGE_SIDE = 8192  # pixels; an image size beyond it is a typo, not a plan

# Ranges of TrainConfig fields: (lowest, highest, whether the lowest is allowed). NaN and inf never are.
_TRAIN_RANGES = {
    "lr": (0.0, math.inf, True),  # 0 freezes the weights (a test of init_from uses it)
    "weight_decay": (0.0, math.inf, True),
    "warmup_epochs": (0.0, math.inf, True),
    "min_lr_ratio": (0.0, 1.0, True),
    "grad_clip": (0.0, math.inf, True),
    "num_workers": (0, 256, True),
    "eval_batch_size": (1, math.inf, True),
}
# Model and dataset options with a natural range, wherever they occur: (lowest, highest) inclusive.
_OPTION_RANGES = {
    "img_size": (1, MAX_IMAGE_SIDE),
    "img_height": (1, MAX_IMAGE_SIDE),
    "height": (1, MAX_IMAGE_SIDE),
    "max_width": (1, MAX_IMAGE_SIDE),
    "canvas_size": (1, MAX_IMAGE_SIDE),
    "digit_size": (1, MAX_IMAGE_SIDE),
    "in_chans": (1, 4),
    "max_shift": (0, MAX_IMAGE_SIDE),
    "val_size": (0, math.inf),
    "test_size": (0, math.inf),
    "train_size": (0, math.inf),
    "train_images": (0, math.inf),
    "val_images": (0, math.inf),
    "test_images": (0, math.inf),
    "num_classes": (0, math.inf),
    "val_fraction": (0.0, 0.99),
    "test_fraction": (0.0, 0.99),
    "dropout": (0.0, 0.99),
}


@dataclass
class TrainConfig:
    """Options of the one trainer shared by every task.

    Attributes:
        epochs: passes over the training split.
        batch_size: global batch size (split evenly over the processes of a DDP run).
        eval_batch_size: batch size for validation and test.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW's decoupled weight decay.
        warmup_epochs: linear warm-up length (fractions allowed); cosine decay after it.
        min_lr_ratio: the cosine schedule ends at ``lr * min_lr_ratio``.
        grad_clip: clip the global gradient norm to this value; 0 turns clipping off.
        bf16: run forward passes under bfloat16 autocast.
        ema_decay: keep an exponential moving average of the weights with this decay (0.999: about
            the last 1,000 steps) and validate, test and save it as ``best.pt`` instead of the
            raw weights (``last.pt`` keeps both, to resume); 0 keeps no average.
        seed: seeds initialisation, shuffling, augmentation and dropout.
        num_workers: DataLoader worker processes.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``.
        init_from: a checkpoint, or a shipped weights name (``rnnvision list-weights``), whose weights
            start this run (pretrain, then fine-tune): tensors are copied by name where the shapes
            agree, the rest (say, a head for other classes) keep their fresh initialisation and are
            named in the log. Not used with ``--resume``.
        class_weights: ``median_frequency`` weights the loss per class by median frequency
            balancing computed from the training split (segmentation); the weights are kept in
            the checkpoint's ``meta``. Empty: unweighted.
    """

    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 512
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    bf16: bool = False
    ema_decay: float = 0.0
    seed: int = 0
    num_workers: int = 0
    device: str = "auto"
    init_from: str = ""
    class_weights: Literal["", "median_frequency"] = ""


@dataclass
class RunConfig:
    """A whole run: which model, which data, how to train."""

    model: dict[str, Any]
    data: dict[str, Any]
    train: TrainConfig = field(default_factory=TrainConfig)
    task: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML/JSON-able form (tuples become lists)."""
        return _plain(
            {"task": self.task, "model": self.model, "data": self.data, "train": dataclasses.asdict(self.train)}
        )

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


MAX_CONFIG_BYTES = 1_000_000


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader without aliases (``*name``): an alias bomb of a few hundred bytes would
    otherwise expand to billions of nodes, and a recipe never needs one."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:  # PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"found alias *{event.anchor}; aliases are not allowed in configs, write the values out",
                event.start_mark,
            )
        return super().compose_node(parent, index)


def parse_yaml(text: str, *, source: str) -> Any:
    """Parse YAML text without aliases; any failure is one :class:`UserError` line naming ``source``."""
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = str(getattr(exc, "problem", None) or exc).splitlines()[0]
        raise UserError(f"{source} is not valid YAML{where}: {problem}") from None
    except (RecursionError, ValueError) as exc:  # nesting too deep; an integer with too many digits
        raise UserError(f"{source} cannot be read as a config ({exc.__class__.__name__}); simplify it") from None


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"section.key=value"`` -> (section, key, value parsed as YAML)."""
    if "=" not in text:
        raise UserError(f"--set takes key=value, got {text!r}")
    path, raw = text.split("=", 1)
    section, key = _section_key(path, "--set")
    try:
        value = parse_yaml(raw, source="--set value") if raw.strip() else ""
    except UserError:
        value = raw
    return section, key, value


def _section_key(path: str, where: str) -> tuple[str, str]:
    """``"train.lr"`` -> ("train", "lr"); anything else is an error naming ``where`` it was written."""
    parts = path.strip().split(".")
    if len(parts) != 2 or parts[0] not in SECTIONS or not parts[1]:
        raise UserError(f"{where} key must be one of model.KEY, data.KEY, train.KEY; got {path!r}")
    return parts[0], parts[1]


def config_from_dict(raw: dict[str, Any], *, source: str = "config") -> RunConfig:
    """Validate a config mapping and fill in every default. Errors name the offending key."""
    from rnnvision.data.registry import get_dataset_entry
    from rnnvision.models.registry import get_model_entry

    if not isinstance(raw, dict):
        raise UserError(f"{source} must be a mapping with sections {', '.join(SECTIONS)}")
    unknown = sorted(str(k) for k in set(raw) - set(SECTIONS) - {"task"})
    if unknown:
        raise UserError(f"{source}: unknown section {', '.join(unknown)}; sections are {', '.join(SECTIONS)}")
    for section in SECTIONS:
        if raw.get(section) is not None and not isinstance(raw[section], dict):
            raise UserError(
                f"{source}: section {section} must be a mapping of key: value lines, got a {type(raw[section]).__name__}"
            )
    model_raw, data_raw, train_raw = (dict(raw.get(s) or {}) for s in SECTIONS)
    for section, values in (("model", model_raw), ("data", data_raw)):
        if not isinstance(values.get("name"), str):
            raise UserError(f"{source}: {section}.name is required")

    model_entry = get_model_entry(model_raw.pop("name"))
    model_raw = model_entry.current_names(model_raw)  # configs and checkpoints from before an option's rename
    model = {"name": model_entry.name, **_check_options("model", model_raw, model_entry.options(), source)}
    data_entry = get_dataset_entry(data_raw.pop("name"))
    data = {"name": data_entry.name, **_check_options("data", data_raw, data_entry.options(), source)}
    for section, values in (("model", model), ("data", data)):
        for key, value in values.items():
            _check_range(f"{source}: {section}.{key}", value, _OPTION_RANGES.get(key, (-math.inf, math.inf)))
    if data_entry.task != model_entry.task:
        raise UserError(
            f"{source}: model {model_entry.name!r} is for {model_entry.task} but dataset {data_entry.name!r} is for "
            f"{data_entry.task}"
        )
    if raw.get("task") not in (None, "", model_entry.task):
        raise UserError(
            f"{source}: task {raw['task']!r} does not match model {model_entry.name!r} ({model_entry.task})"
        )

    hints = typing.get_type_hints(TrainConfig)
    train_options = {f.name: (hints[f.name], f.default) for f in dataclasses.fields(TrainConfig)}
    train = TrainConfig(**_check_options("train", train_raw, train_options, source))
    if train.epochs < 1 or train.batch_size < 1:
        raise UserError(f"{source}: train.epochs and train.batch_size must be at least 1")
    if not 0.0 <= train.ema_decay < 1.0:
        raise UserError(f"{source}: train.ema_decay must lie in [0, 1) (0.999 is typical; 0 keeps no average)")
    for key, (low, high, low_ok) in _TRAIN_RANGES.items():
        value = getattr(train, key)
        if not math.isfinite(value) or not low <= value <= high or (value == low and not low_ok):
            bound = ("[" if low_ok else "(") + f"{low}, {high}" + (")" if high == math.inf else "]")
            raise UserError(f"{source}: train.{key} must be a finite number in {bound}, got {value}")
    return RunConfig(model=model, data=data, train=train, task=model_entry.task)


def _check_range(key: str, value: Any, bounds: tuple[float, float]) -> None:
    """Numbers (also inside tuples) must be finite and within ``bounds``; other values pass."""
    if isinstance(value, (list, tuple)):
        for item in value:
            _check_range(key, item, bounds)
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        low, high = bounds
        if not math.isfinite(value) or not low <= value <= high:
            shown = ("(" if low == -math.inf else "[") + f"{low}, {high}" + (")" if high == math.inf else "]")
            raise UserError(f"{key} must be a finite number in {shown}, got {value}")


def _check_options(section: str, values: dict[str, Any], options: dict[str, tuple[Any, Any]], source: str) -> dict:
    unknown = sorted(str(k) for k in set(values) - set(options))
    if unknown:
        raise UserError(
            f"{source}: unknown key {section}.{unknown[0]}; {section} keys are {', '.join(sorted(options)) or 'none'}"
        )
    return {key: check_value(f"{section}.{key}", value, options[key][0]) for key, value in values.items()}


def load_config(
    path: str | Path | None, overrides: Sequence[str] = (), *, base: dict[str, Any] | None = None, stage: int = 1
) -> RunConfig:
    """Read a YAML config (or start from ``base``), apply ``section.key=value`` overrides, validate.

    A recipe trained in stages lists the later ones under ``stages:``, each a mapping of
    ``section.key: value`` overrides of the recipe (not of the stage before it); stage k > 1 also
    continues from stage k-1's ``best.pt`` (``train.init_from``, which the caller gives). ``stage``
    picks one; the ``overrides`` apply after its own. Every stage is validated, whichever is picked.
    """
    raw: dict[str, Any] = dict(base or {})
    source = "config"
    if path is not None:
        source = str(path)
        raw = _read_recipe(Path(path))
    stages = _stage_overrides(raw.pop(STAGES, None), source)
    if not 1 <= stage <= len(stages) + 1:
        raise UserError(
            f"{source} has {len(stages) + 1} stage(s); the stage must be 1 to {len(stages) + 1}, got {stage}"
        )
    for k, stage_overrides in enumerate(stages, start=2):
        if k != stage:
            config_from_dict(_overridden(raw, stage_overrides, source), source=f"{source}, stage {k}")
    picked = stages[stage - 2] if stage > 1 else []
    user = [parse_override(text) for text in overrides]
    return config_from_dict(
        _overridden(raw, picked + user, source), source=source if stage == 1 else f"{source}, stage {stage}"
    )


def count_stages(path: str | Path) -> int:
    """How many stages the recipe at ``path`` trains in: 1, plus one per entry of its ``stages:``."""
    return 1 + len(_stage_overrides(_read_recipe(Path(path)).get(STAGES), str(path)))


def _read_recipe(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise UserError(f"{path} is over {MAX_CONFIG_BYTES:,} bytes; a config is a few lines of YAML")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    raw = parse_yaml(text, source=str(path)) or {}
    if not isinstance(raw, dict):
        raise UserError(f"{path} must be a YAML mapping with sections {', '.join(SECTIONS)}")
    return raw


def _stage_overrides(stages: Any, source: str) -> list[list[tuple[str, str, Any]]]:
    """``stages:`` of a recipe -> for each later stage, its overrides as (section, key, value)."""
    if stages is None:
        return []
    if not isinstance(stages, list) or not all(isinstance(stage, dict) for stage in stages):
        raise UserError(f"{source}: stages must be a list of mappings of section.key: value overrides")
    return [
        [(*_section_key(str(path), f"{source}: stage {k}"), value) for path, value in stage.items()]
        for k, stage in enumerate(stages, start=2)
    ]


def _overridden(raw: dict[str, Any], overrides: list[tuple[str, str, Any]], source: str) -> dict[str, Any]:
    """A copy of ``raw`` with each (section, key, value) set."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    for section, key, value in overrides:
        out.setdefault(section, {})
        if not isinstance(out[section], dict):
            raise UserError(f"{source}: section {section} must be a mapping")
        if section == "model":
            _drop_other_name(out[section], key)
        out[section][key] = value
    return out


def _drop_other_name(model: dict[str, Any], key: str) -> None:
    """Remove the option ``key`` replaces under its other name (old or new, a renamed option of the model)."""
    from rnnvision.models.registry import get_model_entry, list_models

    if model.get("name") not in list_models():
        return  # config_from_dict reports it
    renamed = get_model_entry(model["name"]).renamed
    for old, new in renamed.items():
        if key in (old, new):
            model.pop(new if key == old else old, None)
