"""``python -m eventsched bench``: the backends side by side, with reference pipelines.

One module per job:

* :mod:`._config` -- the sizes of a run (:class:`BenchConfig`) and the metrics it reports;
* :mod:`._workloads` (throughput, latency, overflow, timers), :mod:`._apps` (handlers
  as applications write them, with peers) and :mod:`._manyjobs` (many interval jobs,
  with APScheduler 3) -- the workloads, run inside one backend's subprocess;
* :mod:`._child` and :mod:`._target` -- the programs those subprocesses run;
* :mod:`._runner` -- spawns the subprocesses, interleaves repetitions, shows progress;
* :mod:`._report` -- medians, ratios and the terminal table; :mod:`._verdict` -- the
  block in plain words printed first; :mod:`._plot` -- the chart;
* :mod:`._document` -- reading a saved run back, checking output paths before a run;
* :mod:`._compare` -- two runs side by side, better or worse;
* :mod:`._command` -- the ``bench`` and ``bench report`` flags (pydantic models for the CLI).

Nothing here is public API: the command line is the interface. This package imports
nothing itself, so that the subprocesses load only what they run.
"""
