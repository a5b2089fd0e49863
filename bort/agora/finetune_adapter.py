"""Plugs the real fine-tuning of `bort.finetune` into Agora's interfaces.

`FinetuneCandidates` is the `CandidateTrainer`: every `train` call builds a fresh `BortClassifier` exactly as
`scripts/finetune_bort.py` would from the same `FinetuneConfig` (the pretrained Bort of
`pretrained_parameters`, or a random one of the configured shape), overrides the settings a hyperparameter set
names, and runs `bort.finetune`'s own update step (`train_step`: same loss per head, gradient clipping, BERTAdam,
warm-up + linear decay) for a fixed budget. Unlike `finetune()`, it trains on examples held in memory (the
training set grows every round) and never touches dev during training: Agora selects on dev itself.

Budget: training units processed (`bort.finetune.features`: one example, or one question with all its options
for multiple choice), i.e. ceil(budget / batch_size) updates; epochs cycle in `finetune`'s seeded data order.

Hyperparameter names: seed -> seed, lr -> lr, wd -> weight_decay, warmup -> warmup_ratio,
batch_size -> batch_size.
"""
import dataclasses
import math
import os
import warnings

from ..distributed import init_distributed
from ..errors import ConfigError
from ..finetune.build import build_classifier, build_tokenizer, device, seed_everything
from ..finetune.evaluation import predict_split
from ..finetune.features import encode_split, global_batches, training_units
from ..finetune.trainer import save_classifier, train_step
from ..kernels import use_kernels
from ..tasks import get_task
from ..training.optim import make_trainer, set_gradient_mode, trainable_parameters
from ..training.schedule import WarmupLinearSchedule
from .casting import ModelLabeller, TaskCasting

MODEL_FILE = "model.params"
HPARAM_FIELDS = {"seed": "seed", "lr": "lr", "wd": "weight_decay", "warmup": "warmup_ratio",
                 "batch_size": "batch_size"}


class _ExamplesAsTask:
    """A task whose `read` returns examples held in memory, so `finetune.features.encode_split` (which reads
    a split from files) tokenizes them exactly as it tokenizes files; everything else is the real task."""

    def __init__(self, task, examples):
        self._task, self._examples = task, list(examples)

    def read(self, data_dir, split):
        return self._examples

    def __getattr__(self, name):
        return getattr(self._task, name)


class FinetuneCandidates:
    """`CandidateTrainer` over `bort.finetune` (see the module docstring). `base_config` is a `FinetuneConfig`:
    task, model shape, pretrained weights, tokenizer, max_len, optimizer, dropout, head init, device."""

    def __init__(self, base_config, tokenizer=None, progress=False):
        if base_config.distributed:
            raise ConfigError("Agora trains its candidates in one process; leave --distributed off")
        if base_config.dtype != "float32":
            raise ConfigError("Agora's candidates train in float32; --dtype float16 is not supported here")
        self.config = base_config
        self.task = get_task(get_task(base_config.task_name).train_task)
        self.tokenizer = tokenizer or build_tokenizer(base_config)
        self.dist = init_distributed(False)
        self.ctx = device(base_config, self.dist)
        self.progress = progress
        self._encoded_cache = {}

    def hparams_config(self, hparams, seed):
        unknown = sorted(set(hparams) - set(HPARAM_FIELDS))
        if unknown:
            raise ConfigError(f"hyperparameter(s) {unknown} have no fine-tuning setting; known: "
                              f"{sorted(HPARAM_FIELDS)}")
        changes = {HPARAM_FIELDS[name]: value for name, value in hparams.items()}
        changes["seed"] = int(seed)
        return dataclasses.replace(self.config, **changes)

    def encode(self, examples, split):
        return encode_split(_ExamplesAsTask(self.task, examples), split, None, self.tokenizer, self.config.max_len)

    def _encoded_for_prediction(self, examples):
        # Dev is predicted after every candidate: encode it once. The cache keeps the list itself, so an id
        # cannot be reused by another list while it is cached.
        cached = self._encoded_cache.get(id(examples))
        if cached is not None and cached[0] is examples and len(cached[0]) == cached[2]:
            return cached[1]
        encoded = self.encode(examples, "predict")
        self._encoded_cache = {id(examples): (examples, encoded, len(examples))}
        return encoded

    def new_model(self, config):
        seed_everything(config.seed)
        return build_classifier(config, self.task, self.tokenizer.vocab_size, self.ctx)

    def train(self, hparams, train_examples, budget, seed):
        config = self.hparams_config(hparams, seed)
        model = self.new_model(config)
        use_kernels(model, self.ctx)
        units = training_units(self.encode(train_examples, "train"))
        lengths = [unit.length for unit in units]
        params = trainable_parameters(model)
        set_gradient_mode(params, 1)  # one micro-batch per update here (see train below)
        trainer = make_trainer(model, config.optimizer, config.lr, config.epsilon, config.weight_decay)
        total_steps = max(1, math.ceil(budget / config.batch_size))
        schedule = WarmupLinearSchedule(config.lr, total_steps, config.warmup_ratio)
        bar = None
        if self.progress:
            from bort.progress import tqdm
            bar = tqdm(total=total_steps, desc=f"candidate lr={config.lr:g} seed={config.seed}", unit="update",
                       leave=False)
        step, epoch = 0, 0
        while step < total_steps:
            for batch in global_batches(lengths, config.batch_size, config.seed, epoch):
                if step >= total_steps:
                    break
                train_step(model, trainer, params, [[units[i] for i in batch]], self.task.head,
                           self.tokenizer.pad_id, schedule(step + 1), config, self.dist, self.ctx, step, False)
                step += 1
                if bar is not None:
                    bar.update(1)
            epoch += 1
        if bar is not None:
            bar.close()
        return model

    def predict(self, model, examples):
        encoded = self._encoded_for_prediction(examples)
        return predict_split(model, encoded, self.tokenizer.pad_id, self.config.dev_batch_size, self.ctx, self.dist)

    def save(self, model, directory):
        save_classifier(model, os.path.join(directory, MODEL_FILE), self.task, self.tokenizer, self.config.max_len)

    def load(self, directory):
        return self.load_file(os.path.join(directory, MODEL_FILE))

    def load_file(self, params_path):
        """A fine-tuned classifier for this task from a `.params` file (its shape comes from the file)."""
        config = dataclasses.replace(self.config, model_parameters=os.fspath(params_path))
        return self.new_model(config)


def read_train_and_dev(task, data_dir, train_limit=None, dev_limit=None):
    """The task's training set and its first dev split (MNLI: matched), optionally cut to their first examples."""
    if not task.dev_splits:
        raise ConfigError(f"{task.name} has no dev split; Agora needs one")
    if len(task.dev_splits) > 1:
        warnings.warn(f"{task.name} has dev splits {task.dev_splits}; Agora uses {task.dev_splits[0]}")
    train = task.read(data_dir, "train")[:train_limit]
    dev = task.read(data_dir, task.dev_splits[0])[:dev_limit]
    return train, dev


def load_labeller(candidates, params_path, casting=None):
    """S from a fine-tuned classifier file for the same task (any size this package can load; it must use the
    candidates' tokenizer)."""
    if not os.path.isfile(params_path):
        raise ConfigError(f"labelling model {params_path} does not exist")
    casting = casting or TaskCasting(candidates.task)
    return ModelLabeller(candidates, candidates.load_file(params_path), casting)
