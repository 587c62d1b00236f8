"""The glue the CLI calls: one run or grid (:mod:`.runner`), benchmarks over labels and seeds
(:mod:`.benchmark`), Ray sweeps (:mod:`.ray_sweep`) and the published anchors (:mod:`.anchors`).
The methods' registry is :mod:`anomaly_toolbox.registry`."""
