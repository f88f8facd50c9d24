"""Native (C) kernels of the step, compiled for the host CPU on first use.

`two_layer`: the fused loss and gradient of the one-hidden-layer erf network on the CPU
(`sampler.cpu_kernel = "native"`), the whole (C, n, N) forward/backward of all chains in
one call with no (C, n, N) temporaries. `build` compiles a C source of this package into
a shared library in a per-user cache, atomically, and loads it with ctypes.
"""
