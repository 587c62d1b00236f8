"""Keep a benchmark's finished cells in git: each completed run's ``results.json`` is copied from
LOG_DIR to DEST in the log directory's layout (models, checkpoints and event files stay behind,
so DEST holds kilobytes, not gigabytes). A machine that lost LOG_DIR rebuilds or extends the
table from DEST: copy DEST to a new folder and give that folder as ``--log-dir`` to the same
``anomaly-box benchmark`` command; the kept cells are read back, not retrained, where the
toolbox version, data, split, seed and hps match (as for any reused run), and only the missing
cells train. ``selection_rules.py`` reads DEST as it is (its rank-agreement column needs the
event files, so it shows ``-`` there).

python benchmarks/keep_runs.py LOG_DIR DEST [--methods egbad,alad]
"""

from __future__ import annotations

from pathlib import Path

import click

from anomaly_toolbox.cli import name_list
from anomaly_toolbox.registry import EXPERIMENTS
from anomaly_toolbox.results import RESULTS_FILE, completed_runs, write_text_atomically


@click.command()
@click.argument("log_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("dest", type=click.Path(file_okay=False, path_type=Path))
@click.option("--methods", default=None,
              help="Comma-separated methods to keep (default: every method in LOG_DIR).")
def main(log_dir: Path, dest: Path, methods: str | None) -> None:
    wanted = None if methods is None else name_list("experiment", methods, list(EXPERIMENTS))
    runs = completed_runs(log_dir, wanted)
    if not runs:
        raise click.BadParameter(f"{log_dir} holds no completed run (<method>/<data>/<run>/"
                                 f"{RESULTS_FILE} with status completed); give the --log-dir "
                                 f"of a benchmark")
    for run_dir, results in runs:
        kept = dest / run_dir.relative_to(log_dir) / RESULTS_FILE
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(kept, (run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
        print(f"kept {results.get('experiment')}, class {results.get('label')}, seed "
              f"{results.get('seed')}: {kept}")
    print(f"{len(runs)} finished run(s) kept in {dest}; to reuse them, copy {dest} to a new "
          f"folder and give it as --log-dir to the benchmark that made them")


if __name__ == "__main__":
    main()
