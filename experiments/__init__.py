"""Configs, the `langevin` command line, run directories and sample-vs-theory comparisons."""
