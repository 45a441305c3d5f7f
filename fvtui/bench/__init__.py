"""`fvtui bench`: every method x seed as a headless session of its own, grouped under one benchmark
name, then the comparison people put in a paper: per-round accuracies, AUBC tables, learning
curves, the feature-space diversity of the synthetic samples and a timing report.

  methods.py  method names (`strategy+augmentation`, the paper's twelve) and seed lists
  spec.py     what a benchmark is: dataset, methods, seeds, engine settings (kept in bench.json)
  runner.py   runs the sessions as child processes, N at a time; resumes, skips finished ones
  report.py   the CSV and Markdown tables (accuracy, AUBC, diversity, timing)
  digest.py   a finished session reduced to what the report takes, kept in the output folder
  figure.py   the learning-curve figures (PNG and SVG): all methods in one plot, and one panel per strategy
  command.py  the command-line face

Nothing here imports torch or matplotlib at module level: the runner's parent process stays light,
and only the report imports them, when it needs them.
"""
