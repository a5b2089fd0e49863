"""CPU inference for Bort: interchangeable encoder backends (`backends`), length bucketing (`batching`), the
classify / fill-mask / embed tasks (`predict`) and their input files (`inputs`).

Nothing is imported here: `import bort.inference` stays cheap, and a script can set thread counts in the
environment before MXNet is loaded.
"""
