"""Running the benchmark (layer 6 of 7): attacks, defenses and grids from configs to stored runs.

The harness (`harness`: run_attack, run_defense), evaluation and the metrics (`evaluate`,
`metrics`), presets, grid files (`grid`), pre-flight checks of a whole plan before training
(`preflight`), and the executors that run a grid's plan on workers or Ray (`executor`). May import
every layer below; nothing of reporting.
"""
