"""matplotlib for the figures of experiments/, on the Agg backend (files only, no display),
imported when the first figure is drawn: matplotlib is slow to import, and the command line,
sweeps and launchers should not pay for it before a report draws."""
from __future__ import annotations


def pyplot():
    """`matplotlib.pyplot`, with the Agg backend selected first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
