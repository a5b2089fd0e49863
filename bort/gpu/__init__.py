"""GPU support that must work before MXNet is imported: loading the CUDA libraries of the `nvidia-*-cu11` wheels
(`cuda_libs`), reading the visible GPUs (`devices`) and deciding whether the installed MXNet wheel can run on them
(`preflight`). Nothing here imports MXNet, so all of it runs and is tested on machines without a GPU."""
