"""The report of a run: convergence, equilibration, step-size bias, figures and tables (imports the layers below it)."""
