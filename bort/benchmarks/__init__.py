"""Benchmarks run by `scripts/benchmark.py <name>`: each module `bort.benchmarks.<name>` has
`add_arguments(parser)` and `run(args) -> dict` (it prints its own table; the dispatcher writes the dict as JSON).

`BENCHMARKS` is the fixed list the dispatcher offers; a module missing from a checkout is reported, not fatal.
"""
BENCHMARKS = {
    "inference": "CPU latency/throughput of Bort's backends vs transformers+torch and BERT-base/large",
    "tokenize": "tokens per second of BortTokenizer vs transformers and GluonNLP tokenizers",
    "pretrain": "pretraining-data creation and distillation training throughput on CPU",
    "train": "one fine-tuning / distillation update vs transformers+torch, each in fresh processes",
}
