"""Theory inputs of a run and the sample-vs-theory comparisons (imports experiments.setup and experiments.rundirs)."""
