"""Atomic checkpoints of a run: sampler state, generator state, step and draw counts.

A checkpoint is one file written to a temporary name, flushed to disk and renamed over
the previous one (os.replace is atomic on POSIX), so a run killed at any instant leaves
either the old or the new checkpoint, never a torn one. A write that fails (a full
disk) removes its temporary file and leaves the previous checkpoint in place.

`save_checkpoint(..., hook=h)` calls `h("checkpoint:replace")` between the durable
temporary file and the rename: a test seam to stop the process there.
"""
from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

CHECKPOINT_FILE = "state.pt"


class CheckpointError(ValueError):
    """The checkpoint file exists but cannot be read (truncated or corrupt)."""


class Checkpoint(NamedTuple):
    state: dict[str, Any]  # the integrator state as a dict (tensors on CPU)
    generator_state: torch.Tensor
    step: int
    draws: dict[str, int]  # draws stored per observable group at this step
    config_hash: str
    # {observable name: {variable: tensor}}: values fixed at the run's initial state
    # (langevin.observables.Observable.initial); None or {} when no observable has any.
    observable_constants: dict[str, dict[str, Any]] | None = None


def _to_cpu(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    return value


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint,
                    hook: Callable[[str], None] | None = None) -> Path:
    """Write `checkpoint` atomically to `directory/state.pt`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CHECKPOINT_FILE
    tmp = directory / (CHECKPOINT_FILE + ".tmp")
    payload = {
        "state": _to_cpu(checkpoint.state),
        "generator_state": checkpoint.generator_state.cpu(),
        "step": int(checkpoint.step),
        "draws": {k: int(v) for k, v in checkpoint.draws.items()},
        "config_hash": str(checkpoint.config_hash),
    }
    if checkpoint.observable_constants:  # absent from checkpoints of runs without them
        payload["observable_constants"] = _to_cpu(checkpoint.observable_constants)
    buffer = io.BytesIO()  # serialized in memory: a full disk then fails as an OSError
    torch.save(payload, buffer)
    try:
        with open(tmp, "wb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if hook is not None:
        hook("checkpoint:replace")
    os.replace(tmp, target)
    return target


def load_checkpoint(directory: str | Path) -> Checkpoint | None:
    """The last checkpoint in `directory`, or None if there is none yet."""
    path = Path(directory) / CHECKPOINT_FILE
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        return Checkpoint(
            state=payload["state"],
            generator_state=payload["generator_state"],
            step=int(payload["step"]),
            draws={str(k): int(v) for k, v in payload["draws"].items()},
            config_hash=str(payload["config_hash"]),
            observable_constants=payload.get("observable_constants") or None,
        )
    except OSError:
        raise
    except Exception as err:  # noqa: BLE001 - torch/pickle/zip raise many types here
        raise CheckpointError(
            f"checkpoint file {str(path)!r} is truncated or corrupt "
            f"({type(err).__name__}: {err}); restore it from a copy, or delete the "
            "run directory's checkpoint/ and samples.zarr to sample again from the start"
        ) from err


def state_to_device(state: Any, device: torch.device | str) -> Any:
    if isinstance(state, torch.Tensor):
        return state.to(device)
    if isinstance(state, dict):
        return {k: state_to_device(v, device) for k, v in state.items()}
    return state
