"""Fine-tuning Bort on GLUE, SuperGLUE and RACE (the training side; tasks live in `bort.tasks`).

    from bort.finetune.config import FinetuneConfig
    from bort.finetune.trainer import finetune
    result = finetune(FinetuneConfig(task_name="RTE", data_dir="glue_data", pretrained_parameters="model/bort.params"))

Modules: `config` (every setting, the release's defaults), `build` (tokenizer and model from the settings),
`features` (examples -> token ids -> length-bucketed, rank-sharded batches), `heads` (loss and score
re-assembly per task head), `evaluation` (dev metrics and test scores), `trainer` (the loop), `predict`
(submission files, `--only_inference`).
"""
