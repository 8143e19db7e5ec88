"""Configuration: the base model of every method config, --set parsing, and run configs.

No torch here: `bdb info` reads configs without importing it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from typing import Any, Iterable, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
)

from bdcore.errors import BdbError


class MethodConfig(BaseModel):
    """Base of every attack/defense config: unknown keys are an error, values are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LGASettings(MethodConfig):
    """Settings of a loss-guided isolation stage (`bdcore.lga_isolate`), shared by the defenses that
    isolate suspected poison by its low LGA loss (ABL; NAB's detection stage). Defaults: ABL's
    paper and the reference's LGA stage; a defense redeclares a field to change its default."""

    gamma: float = Field(0.5, ge=0, description="LGA loss floor: the loss sign(L - gamma) * L keeps the batch loss "
                                                "near gamma (ABL: 0.5)")
    isolation_epochs: int = Field(20, ge=1, description="epochs of LGA training before isolation (ABL: 20)")
    isolation_ratio: float = Field(0.01, gt=0, lt=1, description="share of the training set isolated as poisoned: "
                                                                 "the lowest LGA losses (ABL: 0.01)")
    lga_lr: float | None = Field(0.01, gt=0, description="SGD learning rate of the LGA stage (the reference's 0.01); "
                                                         "None: the victim recipe's")
    lga_batch_size: int | None = Field(None, ge=1, description="mini-batch of the LGA stage; None: the victim "
                                                               "recipe's")
    lga_schedule: Literal["constant", "cosine"] = Field(
        "constant", description="learning-rate schedule of the LGA stage: constant (the reference) or cosine (to 0 "
        "over the stage)")
    lga_augment: bool = Field(False, description="random crop/flip of the images during the LGA stage (the "
                                                 "reference trains it on the plain images)")

    def lga_options(self) -> dict[str, Any]:
        """The keyword arguments of `bdcore.lga_isolate` these settings give."""
        return {"gamma": self.gamma, "epochs": self.isolation_epochs, "ratio": self.isolation_ratio,
                "lr": self.lga_lr, "train_batch_size": self.lga_batch_size, "schedule": self.lga_schedule,
                "augment": self.lga_augment}


class ReverseSettings(MethodConfig):
    """Settings of Neural Cleanse's trigger reverse engineering (`bdcore.reverse_engineer`), shared by the
    defenses that reverse triggers. Defaults: the paper's released code (up to 1000 epochs of batch 32,
    Adam 0.1 with betas 0.5/0.9, cost 1e-3 doubled or halved after 5 epochs, success 0.99, early stop
    after 25 epochs without a smaller mask); a defense redeclares a field to change its default."""

    epochs: int = Field(1000, ge=1, description="maximum reverse-engineering epochs (passes over the reserve) per "
                        "class; early stopping usually ends sooner")
    batch_size: int = Field(32, ge=1, description="mini-batch size of the trigger optimisation")
    lr: float = Field(0.1, gt=0, description="Adam learning rate of the trigger optimisation (betas 0.5, 0.9)")
    init_cost: float = Field(1e-3, gt=0, description="weight of the mask L1 norm once the attack first succeeds "
                             "(the cost starts at 0)")
    cost_multiplier_up: float = Field(2.0, gt=1, description="cost multiplier after `patience` epochs at or above "
                                      "the success threshold")
    cost_multiplier_down: float = Field(2.0, gt=1, description="cost divisor after `patience` epochs below the "
                                        "success threshold")
    patience: int = Field(5, ge=1, description="epochs before the cost is changed")
    success_threshold: float = Field(0.99, gt=0, le=1, description="attack success rate a reversed trigger must reach")
    early_stop_patience: int = Field(25, ge=1, description="epochs without a smaller successful mask before a class "
                                     "stops (once its cost went up and down)")
    early_stop_threshold: float = Field(1.0, gt=0, le=1, description="a new best norm counts as progress only below "
                                        "this factor of the previous best")


def parse_set(items: list[str] | None) -> dict[str, Any]:
    """Turn ["key=value", ...] into a dict; values are read as JSON when they parse, else str."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise BdbError(f"--set expects key=value, got {item!r}")
        try:
            value: Any = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = value
    return out


ALIASES = {"learning_rate": "lr", "num_epochs": "epochs", "n_epochs": "epochs", "bs": "batch_size",
           "wd": "weight_decay", "scheduler": "schedule", "poison_ratio": "pratio", "poisoning_ratio": "pratio"}
"""Other libraries' names of a setting, suggested when no valid name is spelt alike."""


def suggest_field(key: str, fields: Iterable[str]) -> str | None:
    """The valid name a misspelt `key` most likely meant: the closest spelling, else a known alias
    (learning_rate -> lr; pratio -> pratios where only the plural is valid); None if neither."""
    fields = list(fields)
    close = difflib.get_close_matches(key, fields, n=1)
    if close:
        return close[0]
    alias = ALIASES.get(key.lower())
    for cand in (alias, f"{alias}s"):
        if alias and cand in fields:
            return cand
    return None


def format_validation_error(exc: ValidationError, what: str, fields: Iterable[str] = (), prefix: str = "") -> str:
    """One part per problem, joined: 'field: message (got value)', with a 'did you mean' for a
    misspelt setting (fields: the valid setting names; prefix: put before each field's name)."""
    parts = []
    fields = list(fields)
    for err in exc.errors():
        loc = prefix + ".".join(str(p) for p in err.get("loc", ())) or "(config)"
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown setting"
            close = suggest_field(str(err.get("loc", ("",))[-1]), fields)
            if close:
                msg += f" (did you mean {close!r}?)"
        if "input" in err and not isinstance(err["input"], dict):
            msg += f" (got {_short_repr(err['input'])})"
        parts.append(f"{loc}: {msg}")
    return f"invalid {what}: " + "; ".join(parts)


def _short_repr(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def build_config(model: type[BaseModel], values: dict[str, Any], what: str) -> BaseModel:
    """Validate values against a config model; errors become one BdbError line."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        fields = ", ".join(model.model_fields) or "none"
        message = format_validation_error(exc, what, model.model_fields)
        raise BdbError(f"{message} (settings: {fields}; see 'bdb info')") from None


def config_hash(payload: dict[str, Any], length: int = 12) -> str:
    """Stable short hash of a JSON-able dict (sorted keys, no whitespace)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]


class TrainRecipe(BaseModel):
    """How the victim (and any retrained or fine-tuned model) is trained."""

    model_config = ConfigDict(extra="forbid")

    epochs: int = Field(100, ge=1, description="training epochs")
    batch_size: int = Field(128, ge=1, description="mini-batch size")
    lr: float = Field(0.01, gt=0, description="peak learning rate")
    momentum: float = Field(0.9, ge=0, lt=1, description="SGD momentum")
    nesterov: bool = Field(False, description="SGD with Nesterov momentum (e.g. ABL's reference stages)")
    weight_decay: float = Field(5e-4, ge=0, description="weight decay")
    optimizer: str = Field("sgd", pattern="^(sgd|adam)$", description="sgd or adam")
    schedule: str = Field("cosine", pattern="^(cosine|constant|cyclic|plateau)$",
                          description="cosine, constant, cyclic (triangular, between lr_min and lr), or plateau "
                                      "(x0.1 after 10 epochs without a 1e-4 relative fall of the epoch's mean loss)")
    augment: bool = Field(True, description="random crop (pad 4, scaled) + flip where the dataset allows")
    channels_last: bool = Field(True, description="channels-last memory format (same numbers, faster convs)")
    compile: bool = Field(False, description="torch.compile the model (faster after a warm-up)")
    lr_min: float = Field(0.0, ge=0, description="cyclic schedule only: the base (lowest) learning rate")
    cycles: int = Field(1, ge=1, description="cyclic schedule only: triangular cycles over the run")
    precision: Literal["fp32", "bf16", "auto"] = Field(
        "fp32", description="training arithmetic: fp32 (the reference), bf16 (autocast; CPUs with avx512_bf16/AMX "
        "and CUDA), auto (bf16 where the device supports it, else fp32)")

    @model_serializer(mode="wrap")
    def _drop_unused_cyclic_fields(self, handler):
        # The cyclic fields are saved only with a cyclic schedule, precision only when it is not the
        # default fp32 and nesterov only when on, so that every other recipe dumps (and hashes into run ids) exactly as
        # before they existed.
        data = handler(self)
        if isinstance(data, dict):
            if self.schedule != "cyclic":
                data.pop("lr_min", None)
                data.pop("cycles", None)
            if self.precision == "fp32":
                data.pop("precision", None)
            if not self.nesterov:
                data.pop("nesterov", None)
        return data


class AttackRunConfig(BaseModel):
    """Everything that determines an attack run; its hash is the run id."""

    model_config = ConfigDict(extra="forbid")

    preset: str = Field("reference", description="the recipe preset the run started from (bdcore.bench.presets)")
    quantize: Literal["truncate", "round", "none"] = Field(
        "truncate", description="cast of poisoned images to uint8 levels: truncate (the reference), round, none")
    poison_pool: Literal["all", "non-target"] = Field(
        "all", description="dirty-label poison drawn from all samples (the reference) or non-target ones only")

    attack: str
    attack_config: dict[str, Any] = Field(default_factory=dict)
    dataset: str = "mnist5k"
    model: str = "small-cnn"
    pratio: float = Field(0.1, description="poisoning ratio of the whole training set")
    target: int = Field(0, ge=0, description="target class")
    all_to_all: bool = Field(False, description="label mapping y -> (y+1) mod C instead of all-to-one")
    seed: int = 0
    train: TrainRecipe = Field(default_factory=TrainRecipe)
    data_fingerprint: str | None = Field(None, description="hash of the loaded dataset (set when resolved)")
    input_files: dict[str, str] = Field(default_factory=dict,
                                        description="content hash of every file a setting names, by absolute path")

    @field_validator("pratio")
    @classmethod
    def _ratio(cls, v: float) -> float:
        if not 0 < v <= 1:
            raise ValueError("poisoning ratio must be in (0, 1]")
        return v

    def run_id(self) -> str:
        return "a-" + config_hash(self.model_dump(mode="json"))


class DefenseRunConfig(BaseModel):
    """Everything that determines a defense run on top of an attack run."""

    model_config = ConfigDict(extra="forbid")

    defense: str
    defense_config: dict[str, Any] = Field(default_factory=dict)
    attack_run: str
    preset: str = Field("reference", description="the recipe preset the defense's settings started from")
    reserve_ratio: float = Field(0.05, gt=0, lt=1, description="clean reserve share of the training set")
    val_fraction: float = Field(0.2, gt=0, lt=1, description="share of the reserve kept for validation")
    seed: int = 0

    def run_id(self) -> str:
        return "d-" + config_hash(self.model_dump(mode="json"))


def schema_rows(model: type[BaseModel]) -> list[dict[str, Any]]:
    """Field name, type, default and description of a config model (for 'bdb info')."""
    rows = []
    for name, f in model.model_fields.items():
        ann = f.annotation
        if get_origin(ann) is Literal:
            tname = "|".join(str(a) for a in get_args(ann))
        else:
            tname = getattr(ann, "__name__", None) or str(ann).replace("typing.", "")
        default = f.get_default(call_default_factory=True) if not f.is_required() else "(required)"
        rows.append({"name": name, "type": tname, "default": default, "description": f.description or ""})
    return rows


class NoSettings(MethodConfig):
    """A method without settings (e.g. the clean baseline 'none')."""
