"""Test AUROC of jointgan and f-AnoGAN as the training data gets contaminated (Berg et al.,
Table 2, compares the two); EGBAD and any other method on request.

Each cell trains a method at one contamination level (0%, 1%, 2%, 5% anomalies in training) under
protocol P3 (one class normal) and reports test AUROC, mean +/- std over seeds, once per selection
rule (one table each: labelled validation, synthetic, last), so every number names the rule that
chose its weights; the method's own rule is marked. It uses the same runner as ``anomaly-box``;
logs and results land under --log-dir.

A finished cell is reused, not trained again, when the same command runs again with the same
--log-dir (the runner's resume rule), so the cells of one table may be trained by several
processes, each given some --levels, and the whole table printed by a last run of all levels.

Run: python benchmarks/contamination.py [--methods jointgan,fanogan,egbad] [--dataset mnist-5k]
     [--normal-label 1] [--epochs N] [--seeds 42,43,44] [--levels 0,0.02]
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from pathlib import Path

from anomaly_toolbox.cli.common import start_tensorflow  # may turn oneDNN on first

start_tensorflow()  # TensorFlow's C++ start-up lines kept off the console

import click  # noqa: E402
import numpy as np  # noqa: E402

from anomaly_toolbox.cli import BadInput, check_name, int_list, name_list  # noqa: E402
from anomaly_toolbox.cli.common import refuse_repeats  # noqa: E402
from anomaly_toolbox.datasets import DATASETS  # noqa: E402
from anomaly_toolbox.registry import EXPERIMENTS  # noqa: E402
from anomaly_toolbox.experiments.runner import RunConfig, run_experiment  # noqa: E402
from anomaly_toolbox.locks import RunLocked  # noqa: E402

LEVELS = "0,0.01,0.02,0.05"


def level_list(text: str) -> list[float]:
    """``text`` as comma-separated shares of anomalies in [0, 1); anything else is refused."""
    try:
        levels = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise BadInput(f"--levels takes comma-separated shares like 0,0.02; got '{text}'") from None
    refuse_repeats("--levels", levels)
    if not levels or not all(0.0 <= level < 1.0 for level in levels):
        raise BadInput(f"--levels takes shares in [0, 1) like 0,0.02; got '{text}'")
    return levels


@click.command()
@click.option("--methods", default="jointgan,fanogan", show_default=True)
@click.option("--dataset", default="mnist-5k", show_default=True)
@click.option("--normal-label", default=1, show_default=True)
@click.option("--epochs", type=int, help="Override every method's default epochs.")
@click.option("--seeds", default="42", show_default=True, help="Comma-separated seeds.")
@click.option("--levels", default=LEVELS, show_default=True,
              help="Comma-separated contamination shares (anomalies in training) in [0, 1).")
@click.option("--log-dir", type=click.Path(path_type=Path),
              default=Path(tempfile.gettempdir()) / "anomaly-box-contamination", show_default=True)
def main(methods: str, dataset: str, normal_label: int, epochs: int | None, seeds: str,
         levels: str, log_dir: Path) -> None:
    method_list = name_list("experiment", methods, list(EXPERIMENTS))
    check_name("dataset", dataset, list(DATASETS))
    seed_list = int_list("--seeds", seeds)
    level_values = level_list(levels)
    overrides = {} if epochs is None else {"epochs": epochs}
    aurocs: dict[tuple[str, str, float], list[float]] = defaultdict(list)
    own_rule: dict[str, str] = {}
    for method in method_list:
        for level in level_values:
            for seed in seed_list:
                try:
                    [result] = run_experiment(RunConfig(
                        experiment=method, dataset=dataset, protocol="normal",
                        label=normal_label, contamination=level, seed=seed, log_dir=log_dir,
                        overrides=overrides, progress_bar=False))
                except (ValueError, RunLocked) as error:
                    raise BadInput(str(error)) from None
                own_rule[method] = result["selection_rule"]
                for rule, test in result["test_by_selection"].items():
                    aurocs[method, rule, level].append(test["auroc"])
                print(f"{method}, {level * 100:g}% contamination, seed {seed}: " + ", ".join(
                    f"{rule} {test['auroc']:.3f}"
                    for rule, test in result["test_by_selection"].items()), flush=True)
    print(f"\nTest AUROC, {dataset}, class {normal_label} normal (P3), seeds {seed_list}, "
          f"epochs {epochs or 'default'}; * marks the method's own selection rule")
    for rule in dict.fromkeys(rule for _, rule, _ in aurocs):
        print(f"\nWeights chosen by: {rule}\n")
        print("| method | " + " | ".join(f"{level * 100:g}%" for level in level_values) + " |")
        print("|---|" + "---|" * len(level_values))
        for method in method_list:
            cells = [f"{np.mean(values):.3f} +/- {np.std(values):.3f}"
                     for level in level_values if (values := aurocs.get((method, rule, level)))]
            marker = " *" if own_rule[method] == rule else ""
            print(f"| {method}{marker} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
