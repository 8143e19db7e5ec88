"""The harness: runs attacks and defenses under the benchmark's protocol and stores the results.

It owns the data, the backdoor test set, the clean reserve and the metrics; plugins only get
what the threat model grants them.
"""

from __future__ import annotations

import copy
import functools
import json
import platform
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

import bdcore
from bdcore.runs.artifacts import ArtifactCache
from bdcore.api.attack import Attack, AttackContext
from bdcore.config import AttackRunConfig, DefenseRunConfig, build_config
from bdcore.data import ImageDataset
from bdcore.api.defense import Defense, DefenseContext, DefenseInputs, DefenseOutput
from bdcore.errors import BdbError
from bdcore.bench.evaluate import backdoor_test_set, evaluate
from bdcore.runs.identity import check_fingerprint, dataset_fingerprint, resolve_input_files
from bdcore.bench.metrics import broken_victim, der, detection, rir
from bdcore.data.trainset import TrainSet, poison_train_set
from bdcore.bench.presets import check_preset, method_settings
from bdcore.api.registry import Registry, registry
from bdcore.api.resolve import build_model, load_dataset, new_model
from bdcore.lib.stealth import stealth
from bdcore.errors import warn
from bdcore.runs.store import Run, RunStore, cache_root
from bdcore.nn.runtime import cpu_kernels, derive_seed, keep_threads, pick_device, seed_all
from bdcore.nn.trainer import ProgressFn, train

def versions(reg: Registry, packages: list[str]) -> dict[str, Any]:
    """Versions of everything that can change a result."""
    plugin_versions = {p.package: p.version for p in reg.plugins if p.package in packages}
    return {
        "bdcore": bdcore.__version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "plugins": plugin_versions,
    }


def _resolve_method(reg: Registry, kind: str, name: str, values: dict[str, Any],
                    preset: str | None = None) -> tuple[Any, Any]:
    """A method's spec and validated config: its preset settings (if any) under the given values."""
    spec = reg.get(kind, name)
    merged = {**method_settings(spec, preset), **values} if preset else dict(values)
    cfg = build_config(spec.config_model(), merged, f"{kind} {name} settings")
    return spec, cfg


def check_label_mapping(cfg: AttackRunConfig, spec: Any, acfg: Any) -> None:
    """A clean-label attack (spec kind 'DP clean-label', or a config whose `clean_label` setting is on) keeps
    every label, so it has no label mapping: with all-to-all its ASR (share of triggered inputs predicted as
    y + 1) measures nothing. One error line instead of a meaningless number."""
    if cfg.all_to_all and (spec.kind == "DP clean-label" or getattr(acfg, "clean_label", False) is True):
        raise _clean_label_all_to_all(cfg.attack)


def _clean_label_all_to_all(name: str) -> BdbError:
    return BdbError(f"attack {name!r} is clean-label (poisoned samples keep their labels), so it has no "
                    "all-to-all backdoor; drop --all-to-all (all_to_all in a grid)")


def resolve_attack_config(cfg: AttackRunConfig, reg: Registry | None = None,
                          data_root: str | None = None) -> AttackRunConfig:
    """The fully resolved config (every default filled in, the data's fingerprint, the content hash
    of every file a setting names): the thing that is hashed and saved."""
    reg = reg or registry()
    check_preset(cfg.preset)
    spec, acfg = _resolve_method(reg, "attack", cfg.attack, cfg.attack_config)
    check_label_mapping(cfg, spec, acfg)
    reg.get("dataset", cfg.dataset)
    reg.get("model", cfg.model)
    values, files = resolve_input_files(acfg.model_dump(mode="json"))
    fingerprint = dataset_fingerprint(load_dataset(cfg.dataset, data_root, reg))
    return cfg.model_copy(update={"attack_config": values, "data_fingerprint": fingerprint, "input_files": files})


def resolve_defense_config(cfg: DefenseRunConfig, reg: Registry | None = None) -> DefenseRunConfig:
    """The defense run config with every setting filled in (the preset's, then the given ones): the
    thing that is hashed into the run id."""
    reg = reg or registry()
    _, dcfg = _resolve_method(reg, "defense", cfg.defense, cfg.defense_config, check_preset(cfg.preset))
    return cfg.model_copy(update={"defense_config": dcfg.model_dump(mode="json")})


def make_attack(cfg: AttackRunConfig, data: ImageDataset, store: RunStore, device: torch.device,
                reg: Registry | None = None, progress: Callable[[str, int, int], None] | None = None) -> Attack:
    """Instantiate the attack of a resolved run config (progress: where its prepare step reports)."""
    reg = reg or registry()
    spec, acfg = _resolve_method(reg, "attack", cfg.attack, cfg.attack_config)
    if not 0 <= cfg.target < data.num_classes:
        raise BdbError(f"target {cfg.target} is outside the classes of {data.name} (0..{data.num_classes - 1})")
    ctx = AttackContext(
        num_classes=data.num_classes, shape=data.shape, target=cfg.target, pratio=cfg.pratio,
        all_to_all=cfg.all_to_all, seed=derive_seed(cfg.seed, "attack"), device=device, dataset=data.name,
        model=cfg.model, artifacts=ArtifactCache(store.artifacts_dir / "attack"), mean=data.mean, std=data.std,
        hflip=data.hflip, poison_pool=cfg.poison_pool, quantize=cfg.quantize, progress=progress,
        batch_size=cfg.train.batch_size,
    )
    attack = spec.load()(acfg, ctx)
    if not isinstance(attack, Attack):
        raise BdbError(f"attack {cfg.attack!r} from {spec.package} is not a bdcore.api.attack.Attack")
    return attack


def _reuse_or_build(store: RunStore, run_id: str, force: bool, build: Callable[[], Run]) -> Run:
    """The finished run with this id, else build() it: one process builds a run at a time (another one asking
    for the same run waits for it, then reuses its result); torch's thread count is kept whatever build does."""
    if not force and store.is_complete(run_id):
        return store.load(run_id)
    with store.building(run_id):
        if not force and store.is_complete(run_id):
            return store.load(run_id)
        with keep_threads():
            return build()


def _run_meta(reg: Registry, packages: list[str], dev: torch.device, t0: float, seed: int, purposes: tuple[str, ...],
              artifacts: Any, **extra: Any) -> dict[str, Any]:
    """A run's meta.json: versions of everything that can change its result, where and how it ran, its derived
    seeds, its wall time and the artifacts it used."""
    return {
        "versions": versions(reg, packages), "device": str(dev), "threads": torch.get_num_threads(),
        "cpu_kernels": cpu_kernels(), **extra, "seeds": {p: derive_seed(seed, p) for p in purposes},
        "wall_seconds": round(time.perf_counter() - t0, 3), "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "artifacts": artifacts,
    }


def run_attack(
    cfg: AttackRunConfig,
    *,
    store: RunStore | None = None,
    force: bool = False,
    device: str = "auto",
    data_root: str | None = None,
    progress: ProgressFn | None = None,
    reg: Registry | None = None,
    prepare_progress: Callable[[str, int, int], None] | None = None,
) -> Run:
    """Train a backdoored model (or reuse the finished run with the same resolved config).

    progress: the victim's training steps; prepare_progress(what, done, total): the attack's prepare step.
    """
    reg = reg or registry()
    store = store or RunStore()
    cfg = resolve_attack_config(cfg, reg, data_root)
    run_id = cfg.run_id()
    return _reuse_or_build(store, run_id, force, lambda: _attack_run(cfg, run_id, store, device, data_root, progress,
                                                                      reg, prepare_progress))


def _attack_run(cfg: AttackRunConfig, run_id: str, store: RunStore, device: str, data_root: str | None,
                progress: ProgressFn | None, reg: Registry,
                prepare_progress: Callable[[str, int, int], None] | None = None) -> Run:
    dev = pick_device(device)
    data = load_dataset(cfg.dataset, data_root, reg)
    t0 = time.perf_counter()
    seed_all(cfg.seed)
    attack = make_attack(cfg, data, store, dev, reg, progress=prepare_progress)
    if cfg.all_to_all and attack.clean_label:  # a clean-label attack its spec and settings did not declare
        raise _clean_label_all_to_all(cfg.attack)
    attack.prepare(data)
    pidx = attack.poison_indices(data.y_train, torch.Generator().manual_seed(derive_seed(cfg.seed, "poison")))
    if attack.training_controlled:  # the hook poisons inside the step; the victim's data is clean
        trainset = TrainSet(data.x_train, data.y_train, hflip=data.hflip, device=dev)
    else:
        trainset = poisoned_set(attack, data, pidx, cfg, dev)
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = build_model(cfg.model, data, reg)
    hook = attack.train_hook()
    stats = train(model, trainset, cfg.train, seed=derive_seed(cfg.seed, "train"),
                  hooks=[hook] if hook else [], progress=progress)
    if attack.training_controlled:  # the poisoned training set, with the final trigger, as the reference
        trainset = poisoned_set(attack, data, pidx, cfg, dev)
    metrics = evaluate(model, data, attack, dev, precision=stats.precision)  # in the arithmetic it trained in
    metrics.update(trigger_stealth(data, trainset, pidx))
    metrics.update({
        "num_classes": data.num_classes, "victim_broken": broken_victim(metrics["cacc"], data.num_classes),
        "poisoned": int(len(pidx)),
        "train_seconds": round(stats.seconds, 3),
        "images_per_second": round(stats.images_per_second, 1),
        "final_loss": stats.final_loss,
    })
    spec = reg.get("attack", cfg.attack)
    meta = _run_meta(reg, [spec.package, reg.get("model", cfg.model).package, reg.get("dataset", cfg.dataset).package],
                     dev, t0, cfg.seed, ("attack", "poison", "init", "train"), attack.ctx.artifacts.used,
                     precision=stats.precision, attack_kind=spec.kind)
    with store.write(run_id) as w:
        w.json("config.json", cfg.model_dump(mode="json"))
        w.json("meta.json", meta)
        w.json("metrics.json", metrics)
        w.json("poison_indices.json", pidx.tolist())
        w.tensors("model.safetensors", model.state_dict())
        state = attack.state()
        if state:
            w.tensors("attack_state.safetensors", state)
    return store.load(run_id)


def poisoned_set(attack: Attack, data: ImageDataset, pidx: torch.Tensor, cfg: AttackRunConfig,
                 device: torch.device) -> TrainSet:
    """The run's poisoned training set (images and labels only), as the reference stores it."""
    return poison_train_set(data.x_train, data.y_train, attack, pidx, quantize=cfg.quantize,
                            hflip=data.hflip, device=device)


@torch.no_grad()
def trigger_stealth(data: ImageDataset, poisoned: TrainSet, pidx: torch.Tensor,
                    limit: int = 512) -> dict[str, float | None]:
    """PSNR/SSIM between clean and poisoned training images (up to `limit` poisoned samples)."""
    idx = pidx[:limit]
    if not len(idx):  # nothing poisoned (the clean baseline): no stealth to measure
        return {"psnr": None, "ssim": None}
    x = data.x_train[idx].float().div(255)
    xp, _ = poisoned.batch(idx)
    return stealth(x, xp.cpu())


def check_run_attack(run: Run, reg: Registry) -> None:
    """The attack a stored run was made with is installed, else a one-line error saying which
    package to install (the run's meta.json records the plugin packages it was made with)."""
    name = run.config.get("attack")
    if not isinstance(name, str) or name in reg.specs["attack"] or ("attack", name) in reg.conflicts:
        return
    reg._raise_if_failed(name, "attack")  # installed but broken: that plugin's failure
    made = (run.meta.get("versions") or {}).get("plugins") or {}
    pkg = f"bdb-attack-{name}"
    if pkg not in made:  # a third-party package name: the one of the run's packages that is gone
        gone = sorted(p for p in made if p not in {q.package for q in reg.plugins})
        pkg = gone[0] if len(gone) == 1 else pkg
    how = f"bdb install {name} --kind attack" if pkg == f"bdb-attack-{name}" else f"pip install {pkg}"
    version = f" (the run was made with {pkg} {made[pkg]})" if isinstance(made.get(pkg), str) else ""
    raise BdbError(f"attack {name!r} of run {run.run_id} is not installed: {how}{version}")


def load_run_model(run: Run, store: RunStore, name: str, data: ImageDataset, device: torch.device,
                   reg: Registry | None = None) -> nn.Module:
    """The model `name` with a stored run's weights (model.safetensors), on device, in eval mode; a one-line
    error when they do not fit."""
    model = build_model(name, data, reg)
    try:
        model.load_state_dict(store.load_tensors(run, "model.safetensors"))
    except RuntimeError as exc:
        raise BdbError(f"run {run.run_id}: weights do not fit model {name} ({str(exc).splitlines()[0]})") from None
    return model.to(device).eval()


def load_attack_run(run_id: str, store: RunStore, device: torch.device, data_root: str | None = None,
                    reg: Registry | None = None) -> tuple[Run, AttackRunConfig, ImageDataset, Attack, nn.Module, torch.Tensor]:
    """Rebuild everything of a finished attack run: config, data, attack, model, poison indices."""
    reg = reg or registry()
    run = store.load(run_id)
    if run.kind != "attack":
        raise BdbError(f"{run.run_id} is a defense run; pass an attack run id (a-...)")
    check_run_attack(run, reg)
    cfg = AttackRunConfig.model_validate(run.config)
    data = load_dataset(cfg.dataset, data_root, reg)
    check_fingerprint(cfg.data_fingerprint, data, run.run_id)
    attack = make_attack(cfg, data, store, device, reg)
    if run.file("attack_state.safetensors").is_file():
        attack.load_state({k: v.to(device) for k, v in store.load_tensors(run, "attack_state.safetensors").items()})
    else:
        attack.prepare(data)
    model = load_run_model(run, store, cfg.model, data, device, reg)
    try:
        pidx = torch.tensor(json.loads(run.file("poison_indices.json").read_text()), dtype=torch.long)
    except (OSError, ValueError):
        raise BdbError(f"run {run.run_id} is corrupt: poison_indices.json unreadable; rerun it with --force") from None
    return run, cfg, data, attack, model, pidx


_TUNED_WARNED: set[tuple[str, str, str, str]] = set()


def warn_tuned(spec: Any, preset: str, dataset: str, model: str) -> None:
    """Once per process and (method, preset, dataset, model): say that a preset's tuned setting was never
    validated on this dataset and model (`MethodSpec.tuned`)."""
    from bdcore.api.spec import TUNED_ON

    note = getattr(spec, "tuned", {}).get(preset)
    key = (spec.name, preset, dataset, model)
    if not note or (dataset, model) == TUNED_ON or key in _TUNED_WARNED:
        return
    _TUNED_WARNED.add(key)
    warn(f"{spec.name}'s {preset} preset was tuned in miniature ({note}); on {dataset} / {model} that value was "
         f"never validated: check it, or pass --preset reference")


def split_reserve(n_train: int, ratio: float, val_fraction: float, seed: int,
                  exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The clean reserve's indices (all of it) and the validation split's (a part of it), by seed.

    `exclude` (the attack's poisoned indices) are never drawn: a defense that also holds the training set
    must not hold a poisoned image and its clean original side by side (it could diff them). The reserve
    keeps its size, ratio x n_train. (BackdoorBench draws its clean share from all training indices, so
    there the overlap exists: a stated deviation.)
    """
    gen = torch.Generator().manual_seed(derive_seed(seed, "reserve"))
    perm = torch.randperm(n_train, generator=gen)
    if exclude is not None and len(exclude):
        perm = perm[~torch.isin(perm, exclude.long().cpu())]
    k = max(2, int(round(ratio * n_train)))
    if k > len(perm):
        raise BdbError(f"a clean reserve of {k} images needs more never-poisoned training images than the "
                       f"{len(perm)} there are; lower reserve_ratio")
    n_val = max(1, int(round(val_fraction * k)))
    reserve = perm[:k]
    return reserve.sort().values, reserve[:n_val].sort().values


@dataclass
class DefenseSetup:
    """Everything the harness prepares for one defense run; only `inputs` and the defense's own
    context reach the plugin."""

    arun: Run
    acfg: AttackRunConfig
    data: ImageDataset
    attack: Attack
    model: nn.Module
    pidx: torch.Tensor
    reserve_idx: torch.Tensor
    val_idx: torch.Tensor
    train: TrainSet
    defense: Defense
    inputs: DefenseInputs
    dev: torch.device
    reg: Registry

    def score(self, out: DefenseOutput, metrics: dict[str, Any], progress: ProgressFn | None = None) -> nn.Module:
        """Turn the defense's output into the model to evaluate (its repaired model, a model retrained on the
        samples it kept, or the victim), recording its detection metrics in `metrics`."""
        model, full_train, pidx, acfg, data = self.model, self.train, self.pidx, self.acfg, self.data
        attack, dev, reg = self.attack, self.dev, self.reg
        n = len(full_train)
        truth = torch.zeros(n, dtype=torch.bool)
        truth[pidx] = True
        flagged = out.flagged
        if flagged is None and out.keep is not None:
            flagged = ~out.keep.bool().cpu()
        if flagged is not None or out.scores is not None:
            for name, t in (("flagged", flagged), ("scores", out.scores)):
                if t is not None and t.shape != (n,):
                    raise BdbError(f"defense returned {name} of shape {tuple(t.shape)}, expected ({n},)")
            scores = out.scores.detach().cpu().numpy() if out.scores is not None else None
            if flagged is None:  # rank-based: flag as many as the top-scored share the defense gives in info
                k = int(out.info.get("flag_count", 0))
                order = np.argsort(-scores, kind="stable")
                flagged = torch.zeros(n, dtype=torch.bool)
                flagged[torch.from_numpy(order[:k].copy())] = True
            metrics["detection"] = detection(flagged.cpu().numpy(), truth.numpy(), scores)
        if out.input_detector is not None:
            x_bd, _, _ = backdoor_test_set(data, attack)
            x_all = torch.cat([data.x_test.float().div(255), x_bd.cpu().float()])
            positive = np.r_[np.zeros(len(data.x_test), bool), np.ones(len(x_bd), bool)]
            # the detector sees clean and triggered inputs shuffled together in every batch, as a deployed one would
            # (all-clean then all-triggered batches would let a detector that uses batch statistics tell them apart)
            order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(derive_seed(acfg.seed, "inputs")))
            with torch.no_grad():
                shuffled = torch.cat([out.input_detector(x_all[order[s:s + 256]].to(dev)).detach().float().cpu()
                                      for s in range(0, len(order), 256)])
            scores_t = torch.empty_like(shuffled)
            scores_t[order] = shuffled
            scores = scores_t.numpy()
            thr = out.threshold if out.threshold is not None else float("inf")
            metrics["input_detection"] = detection(scores > thr, positive, scores)
        if out.model is not None:
            return out.model.to(dev).eval()
        if out.keep is not None:
            keep = out.keep.bool()
            if keep.shape != (n,):
                raise BdbError(f"defense returned keep of shape {tuple(keep.shape)}, expected ({n},)")
            torch.manual_seed(derive_seed(acfg.seed, "init"))
            fresh = build_model(acfg.model, data, reg)
            stats = train(fresh, full_train.subset(keep), acfg.train, seed=derive_seed(acfg.seed, "train"), progress=progress)
            metrics["retrained_on"] = int(keep.sum())
            metrics["retrain_seconds"] = round(stats.seconds, 3)
            return fresh.eval()
        return model


def defense_setup(cfg: DefenseRunConfig, spec: Any, dcfg: Any, store: RunStore, dev: torch.device,
                  data_root: str | None = None, reg: Registry | None = None,
                  phase_progress: Callable[[str, int, int], None] | None = None) -> DefenseSetup:
    """Load the attack run and build the defense with its threat-model inputs (sealed: images and
    labels only; its own artifact namespace)."""
    reg = reg or registry()
    arun, acfg, data, attack, model, pidx = load_attack_run(cfg.attack_run, store, dev, data_root, reg)
    warn_tuned(spec, cfg.preset, acfg.dataset, acfg.model)
    seed_all(cfg.seed)
    reserve_idx, val_idx = split_reserve(len(data.y_train), cfg.reserve_ratio, cfg.val_fraction, cfg.seed,
                                         exclude=pidx)
    fit_idx = reserve_idx[~torch.isin(reserve_idx, val_idx)]

    def clean(idx: torch.Tensor) -> TrainSet:
        return TrainSet(data.x_train[idx], data.y_train[idx], hflip=data.hflip, device=dev)

    full_train = poisoned_set(attack, data, pidx, acfg, dev)
    cls = spec.load()

    ctx = DefenseContext(
        num_classes=data.num_classes, shape=data.shape, mean=data.mean, std=data.std, hflip=data.hflip,
        seed=derive_seed(cfg.seed, "defense"), device=dev,
        artifacts=ArtifactCache(cache_root() / "defense" / spec.name),  # outside the run store: see cache_root
        progress=phase_progress,
    )
    defense = cls(dcfg, ctx)
    if not isinstance(defense, Defense):
        raise BdbError(f"defense {cfg.defense!r} from {spec.package} is not a bdcore.api.defense.Defense")
    grants_train = spec.stage in ("pre", "in", "detect-data") or bool(defense.needs_train_set)
    inputs = DefenseInputs(
        model=copy.deepcopy(model), reserve=clean(reserve_idx), val=clean(val_idx), reserve_fit=clean(fit_idx),
        train=full_train if grants_train else None, recipe=acfg.train,
        # only what builds the architecture: no run config (it names the target), no dataset (test set)
        new_model=functools.partial(new_model, acfg.model, data.num_classes, data.shape, data.mean, data.std, dev),
    )
    return DefenseSetup(arun, acfg, data, attack, model, pidx, reserve_idx, val_idx, full_train, defense, inputs, dev,
                        reg)


def run_defense(
    cfg: DefenseRunConfig,
    *,
    store: RunStore | None = None,
    force: bool = False,
    device: str = "auto",
    data_root: str | None = None,
    progress: ProgressFn | None = None,
    reg: Registry | None = None,
    phase_progress: Callable[[str, int, int], None] | None = None,
) -> Run:
    """Apply a defense to a finished attack run and score it (or reuse the finished run).

    progress(done, total, loss): the harness's retraining and, without phase_progress, the defense's own
    phases; phase_progress(what, done, total): the phases a defense reports (`Defense.report`)."""
    reg = reg or registry()
    store = store or RunStore()
    spec, dcfg = _resolve_method(reg, "defense", cfg.defense, cfg.defense_config, check_preset(cfg.preset))
    cfg = resolve_defense_config(cfg, reg).model_copy(update={"attack_run": store.resolve(cfg.attack_run)})
    run_id = cfg.run_id()
    return _reuse_or_build(store, run_id, force, lambda: _defense_run(cfg, spec, dcfg, run_id, store, device,
                                                                       data_root, progress, reg, phase_progress))


def _defense_run(cfg: DefenseRunConfig, spec: Any, dcfg: Any, run_id: str, store: RunStore, device: str,
                 data_root: str | None, progress: ProgressFn | None, reg: Registry,
                 phase_progress: Callable[[str, int, int], None] | None = None) -> Run:
    dev = pick_device(device)
    t0 = time.perf_counter()
    if phase_progress is None and progress is not None:  # a bar without a description: the phases' steps
        def phase_progress(what: str, done: int, total: int) -> None:
            progress(done, total, float("nan"))
    setup = defense_setup(cfg, spec, dcfg, store, dev, data_root, reg, phase_progress)
    arun, acfg, data, attack, defense = setup.arun, setup.acfg, setup.data, setup.attack, setup.defense
    torch.manual_seed(derive_seed(cfg.seed, "defense-run"))
    out = defense.run(setup.inputs)
    if not isinstance(out, DefenseOutput):
        raise BdbError(f"defense {cfg.defense!r} returned {type(out).__name__}, expected DefenseOutput")
    before = {k: arun.metrics[k] for k in ("cacc", "asr", "ra")}
    metrics: dict[str, Any] = {"before": before, "num_classes": data.num_classes,
                               "victim_broken": broken_victim(before["cacc"], data.num_classes)}
    repaired = setup.score(out, metrics, progress)
    after = evaluate(repaired, data, attack, dev, precision=acfg.train.precision)  # the victim's arithmetic
    metrics.update({
        "after": after, "cacc": after["cacc"], "asr": after["asr"], "ra": after["ra"],
        "der": der(before, after), "rir": rir(before, after), "info": out.info,
        "defense_seconds": round(time.perf_counter() - t0, 3),
    })
    meta = _run_meta(reg, [spec.package, reg.get("attack", acfg.attack).package], dev, t0, cfg.seed,
                     ("reserve", "defense", "defense-run"), defense.ctx.artifacts.used, stage=spec.stage,
                     attack_config=acfg.model_dump(mode="json"))
    with store.write(run_id) as w:
        w.json("config.json", cfg.model_dump(mode="json"))
        w.json("meta.json", meta)
        w.json("metrics.json", metrics)
        w.json("reserve_indices.json", {"reserve": setup.reserve_idx.tolist(), "val": setup.val_idx.tolist()})
        if out.model is not None or out.keep is not None:
            w.tensors("model.safetensors", repaired.state_dict())
    return store.load(run_id)


