"""Configs, data and the build of a run: the bottom layer of experiments/ (imports only langevin/ and theory/)."""
