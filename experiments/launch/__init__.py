"""Executors: where the runs of a `langevin run` / `langevin resume` execute.

    launch.executor = "inline"   in the calling process, one run after the other (default)
    launch.executor = "local"    separate processes on this machine: one job per visible GPU
                                 (CUDA_VISIBLE_DEVICES pins it), or launch.max_parallel CPU jobs
    launch.executor = "slurm"    one SLURM job per run (a job array for a sweep or shards),
                                 checkpointed and requeued on timeout or preemption

Every job is the same command, `python -m experiments.cli resume RUN_DIR`, run as a child
of a submitit job (`jobs.RunJob`): one sampling path, whatever the executor. The
scheduling is submitit's (and SLURM's): `local` uses submitit's LocalExecutor, with a
bounded pool of slots (one per GPU or CPU job) so that no more jobs run at once than
there are devices; `slurm` uses submitit's SlurmExecutor. Both need the `[cluster]`
extra (submitit), imported only here, when such an executor is used.

Records: each run directory gets `launch/` with `submitted.json` (executor, job id,
submitit folder), `events.jsonl` (one line per job start, requeue and end) and
`job.log` (the run's output); `langevin status OUT` reads them
(`experiments.launch.status`).
"""
