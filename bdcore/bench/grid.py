"""Grid files: attack x poisoning ratio x model x dataset x seed, each attack run then defended.

TOML, validated by pydantic (unknown keys are errors). No torch here.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bdcore.config import AttackRunConfig, DefenseRunConfig, TrainRecipe, format_validation_error
from bdcore.errors import BdbError
from bdcore.bench.presets import PRESETS, victim_recipe


class MethodEntry(BaseModel):
    """One method of a grid, with its settings."""

    model_config = ConfigDict(extra="forbid")

    name: str
    set: dict[str, Any] = Field(default_factory=dict, description="method settings (as --set)")


def _entries(v: Any) -> list[MethodEntry]:
    if isinstance(v, (str, dict)):  # attacks = "badnet": one method, not a list of letters
        v = [v]
    if not isinstance(v, list):
        raise ValueError(f"expected a list of method names or {{name, set}} tables, got {type(v).__name__}")
    out = []
    for item in v:
        out.append(MethodEntry(name=item) if isinstance(item, str) else MethodEntry.model_validate(item))
    return out


class Grid(BaseModel):
    """A benchmark grid."""

    model_config = ConfigDict(extra="forbid")

    name: str = "grid"
    datasets: list[str] = Field(default_factory=lambda: ["mnist5k"])
    models: list[str] = Field(default_factory=lambda: ["small-cnn"])
    pratios: list[float] = Field(default_factory=lambda: [0.1])
    seeds: list[int] = Field(default_factory=lambda: [0])
    target: int = 0
    all_to_all: bool = False
    attacks: list[MethodEntry]
    defenses: list[MethodEntry] = Field(default_factory=list)
    preset: str = Field("reference", description="recipe preset (bdcore.bench.presets): reference or quick")
    quantize: Literal["truncate", "round", "none"] = "truncate"
    poison_pool: Literal["all", "non-target"] = "all"
    train: dict[str, Any] = Field(default_factory=dict, description="victim recipe fields over the preset's")
    reserve_ratio: float = Field(0.05, gt=0, lt=1)

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        if v not in PRESETS:
            raise ValueError(f"unknown preset {v!r}; use one of {', '.join(PRESETS)}")
        return v

    @model_validator(mode="after")
    def _recipes(self) -> "Grid":
        for ds in self.datasets:
            self.recipe(ds)  # every dataset's recipe validates
        return self

    def recipe(self, dataset: str) -> TrainRecipe:
        """The victim recipe for a dataset: the preset's, with the grid's [train] fields over it."""
        return TrainRecipe.model_validate({**victim_recipe(self.preset, dataset), **self.train})

    @field_validator("attacks", "defenses", mode="before")
    @classmethod
    def _methods(cls, v: Any) -> list[MethodEntry]:
        return _entries(v)

    @field_validator("attacks")
    @classmethod
    def _some_attacks(cls, v: list[MethodEntry]) -> list[MethodEntry]:
        if not v:
            raise ValueError("name at least one attack (e.g. attacks = [\"badnet\"]; \"none\" trains a clean model)")
        return v

    @field_validator("pratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        for r in v:
            if not 0 < r <= 1:
                raise ValueError(f"poisoning ratio {r} is outside (0, 1]")
        return v

    def attack_runs(self) -> list[AttackRunConfig]:
        """Every attack run of the grid, in a stable order."""
        runs = []
        for ds in self.datasets:
            for model in self.models:
                for a in self.attacks:
                    for pr in self.pratios:
                        for seed in self.seeds:
                            runs.append(AttackRunConfig(
                                attack=a.name, attack_config=a.set, dataset=ds, model=model, pratio=pr,
                                target=self.target, all_to_all=self.all_to_all, seed=seed, preset=self.preset,
                                quantize=self.quantize, poison_pool=self.poison_pool, train=self.recipe(ds),
                            ))
        return runs

    def defense_runs(self, attack_run_id: str, seed: int) -> list[DefenseRunConfig]:
        return [
            DefenseRunConfig(defense=d.name, defense_config=d.set, attack_run=attack_run_id,
                             reserve_ratio=self.reserve_ratio, seed=seed, preset=self.preset)
            for d in self.defenses if d.name != "none"
        ]


def load_grid(path: str | Path) -> Grid:
    """Read and validate a grid file; any problem is one BdbError line."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise BdbError(f"grid file {p} not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BdbError(f"grid file {p} is not valid TOML: {exc}") from None
    try:
        return Grid.model_validate(raw)
    except ValidationError as exc:
        top = set(Grid.model_fields)
        if set(raw) <= top and all(e["loc"] and e["loc"][0] not in top for e in exc.errors()):
            # every key is a grid field, so the problem is a [train] field (raised by Grid._recipes)
            raise BdbError(format_validation_error(exc, f"grid file {p}", TrainRecipe.model_fields, "train.")) from None
        raise BdbError(format_validation_error(exc, f"grid file {p}", Grid.model_fields)) from None
