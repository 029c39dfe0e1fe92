"""``python -m eventsched bench``: the backends side by side, with reference pipelines.

One module per job:

* :mod:`._config` -- the sizes of a run (:class:`BenchConfig`) and the metrics it reports;
* :mod:`._workloads` -- the workloads, run inside one backend's subprocess;
* :mod:`._child` and :mod:`._target` -- the programs those subprocesses run;
* :mod:`._runner` -- spawns the subprocesses, interleaves repetitions, shows progress;
* :mod:`._report` -- medians, ratios and the terminal table; :mod:`._plot` -- the chart;
* :mod:`._command` -- the ``bench`` subcommand's flags (a pydantic model for the CLI).

Nothing here is public API: the command line is the interface. This package imports
nothing itself, so that the subprocesses load only what they run.
"""
