"""Only the optional C extension lives here; everything else about the package is in pyproject.toml."""
from setuptools import Extension, setup

# GPT-2's pre-tokenization and a piece cache in C (the 'native' byte-level BPE engine). Optional: without a
# C compiler the package still installs and byte-level BPE encodes with tiktoken (the reason is logged).
BYTELEVEL = Extension("bort.tokenizer._bytelevel", ["bort/tokenizer/_bytelevel.c"], optional=True)

setup(ext_modules=[BYTELEVEL])
