from setuptools import Extension, find_packages, setup

# GPT-2's pre-tokenization and a piece cache in C (the 'native' byte-level BPE engine). Optional: without a
# C compiler the package still installs and byte-level BPE encodes with tiktoken (the reason is logged).
BYTELEVEL = Extension("bort.tokenizer._bytelevel", ["bort/tokenizer/_bytelevel.c"], optional=True)

setup(
    name="bort",
    version="0.1.0",
    description="Bort (de Wynter & Perry, 2020) on MXNet 1.9.1 and GluonNLP 0.10",
    packages=find_packages(include=["bort", "bort.*"]),
    ext_modules=[BYTELEVEL],
    python_requires=">=3.8",
    install_requires=[
        "mxnet==1.9.1",
        "numpy>=1.16,<1.24",
        "gluonnlp==0.10.0",
        "sentencepiece",
        "tokenizers",
        "tiktoken",
        "regex",
        "tqdm",
        "pytest",
    ],
    extras_require={
        "export": ["torch==2.13.0", "transformers==5.23.0", "safetensors", "onnx==1.23.2", "onnxruntime==1.32.0"],
        "dist": ["horovod==0.28.1"],
        # GPU users replace the CPU wheel: pip uninstall mxnet && pip install mxnet-cu112==1.9.1
        "gpu": ["mxnet-cu112==1.9.1"],
    },
)
