"""Write one trial's architecture, weights (in the formats asked) and metrics to a folder."""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from archsearch.build import Components, build_components, load_data
from archsearch.config import Config
from archsearch.export_formats import (
    FILES,
    TOLERANCE,
    ExportError,
    export_model,
    parse_formats,
    prepare_folder,
    require_extras,
)
from archsearch.study import trial_seed
from archsearch.trial import FrozenTrial


def export_trial(
    config: Config, seed: int, trial: FrozenTrial, out: Path, *, retrain_full: bool,
    console: Console, formats: Sequence[str] = ("state_dict",),
    components: Components | None = None,
) -> list[str]:
    """Export ``trial``.  Weights come from training its genotype again: with the trial's
    own seed and split this reproduces the trial's network (CPU training is
    deterministic); ``retrain_full`` trains on train+validation instead.

    The network is written in each of ``formats`` (``archsearch.export_formats``); the
    onnx and pt2 files are checked against it, and the largest differences go into
    ``metrics.json``.  ``components`` (built from ``config``) saves building them again
    when several trials are exported.
    """
    formats = parse_formats(formats)
    require_extras(formats)
    if components is None:
        components = build_components(config, load_data(config))
    train_final = getattr(components.estimator, "train_final", None)
    networks = [f for f in formats if f != "state_dict"]
    if train_final is None and networks:
        raise ExportError(f"the {config.estimator.name} estimator trains no network (it looks "
                          f"up or scores architectures): nothing to export as "
                          f"{', '.join(networks)}")
    prepare_folder(out)
    (out / "genotype.json").write_text(json.dumps(dict(trial.genotype), indent=2, sort_keys=True))
    written = ["genotype.json"]
    metrics: dict[str, object] = {"trial": trial.number, "search_metrics": dict(trial.metrics)}
    if train_final is None:
        console.print("this estimator trains nothing (a table lookup): no weights to export")
    else:
        import torch

        mode = "train+validation" if retrain_full else "the trial's own training split"
        with console.status(f"retraining trial {trial.number} on {mode}"):
            model, final = train_final(
                trial.genotype, trial_seed(seed, trial.number),
                include_validation=retrain_full)
        dataset = components.dataset
        example = torch.from_numpy(np.ascontiguousarray(dataset.x_test[:2]))
        if len(example) < 2:
            example = torch.from_numpy(np.ascontiguousarray(dataset.x_train[:2]))
        with console.status(f"writing {', '.join(formats)}"):
            checks = export_model(model, example, out, formats,
                                  seed=trial_seed(seed, trial.number))
        written += [FILES[f] for f in formats]
        for check in checks.values():
            runner = "in ONNX Runtime" if check.format == "onnx" else "with torch.export.load"
            console.print(f"{check.file} checked {runner}: max abs difference "
                          f"{check.max_abs_diff:.3g} (limit {TOLERANCE:g})")
        metrics["export_metrics"] = final
        metrics["retrained_on"] = mode
        metrics["formats"] = list(formats)
        metrics["exports"] = {name: check.to_dict() for name, check in checks.items()}
        metrics["network"] = {
            "space": {"name": config.space.name, **config.space.params},
            "input_shape": list(dataset.input_shape), "classes": list(dataset.classes),
            "input_scale": float(model.standardize.scale),
        }
    metrics["architecture"] = components.space.format(trial.genotype)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    written.append("metrics.json")
    return written


def load_exported(folder: str | Path) -> Any:
    """The exported network, ready for inference: it takes inputs as the dataset stores
    them (raw pixels or features) and returns logits over ``metrics.json``'s classes."""
    import torch
    from torch import nn

    from archsearch import registry
    from archsearch.nn.ops import Standardize
    from archsearch.space.genotype import Genotype

    folder = Path(folder)
    info = json.loads((folder / "metrics.json").read_text())["network"]
    space_params = dict(info["space"])
    if "stem_width" in info:  # exports of archsearch <= 0.1 kept it beside the space
        space_params.setdefault("stem_width", info["stem_width"])
    space = registry.resolve("space", space_params.pop("name"))(**space_params)
    genotype = Genotype.from_json((folder / "genotype.json").read_text())
    shape = tuple(info["input_shape"])
    net = space.build_network(genotype, shape, len(info["classes"]))
    channels = shape[0]
    model = nn.Sequential(OrderedDict(
        standardize=Standardize(info["input_scale"], torch.zeros(channels), torch.ones(channels)),
        net=net,
    ))
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True))
    return model.eval()
