"""`scripts/benchmark.py train`: the time of one training update on CPU, this package against transformers + torch
doing the same work, each in fresh processes started the way a user starts them (see `isolated`).

- fine-tuning: full-size Bort + the classification head, one update of BATCHxLENGTH (forward, backward, gradient
  clipping, BERTAdam with weight decay), through the fine-tuning code itself (`bort.finetune.trainer.train_step`
  on `build_classifier`'s model); torch: `BertForSequenceClassification` of the same shape (4 layers, 1024
  units, FFN 768, 8 heads, RoBERTa's 50265-token vocabulary), AdamW, `clip_grad_norm_`.
- pretraining: one distillation step as `bort.pretraining.trainer` takes it (student forward + backward, frozen
  teacher forward, MLM + soft cross-entropy at the masked positions, clipping, BERTAdam); the teacher has the
  student's shape (the release's RoBERTa-large teacher would only add the same forward to both sides). torch:
  `BertForMaskedLM` student and teacher, the MLM head run at the masked positions only, as this package does.

Weights are random: speed does not depend on them. Every update ends with all work finished (MXNet's engine is
asynchronous: `waitall`). A process warms up (`--warmup` updates) and then times `--updates`; rounds interleave
the frameworks (each round: one fresh process per participant) and the best update over all rounds is reported,
with the median of the rounds' best.
"""
import os

from ..errors import ConfigError

_PRELUDE = r'''
import json, os, sys, time
spec = json.loads(sys.argv[1])
'''

_TIMING = r'''
for step in range(spec["warmup"]):
    update(step)
seconds = []
for step in range(spec["warmup"], spec["warmup"] + spec["updates"]):
    begin = time.perf_counter()
    update(step)
    seconds.append(time.perf_counter() - begin)
print("BENCHMARK_RESULT " + json.dumps(dict(setup_seconds=0.0, cells={spec["cell"]: seconds})))
'''

#: Bort's shape (bort_4_8_768_1024); --quick: a tiny one, to check that every worker runs.
FULL_SIZE = dict(num_layers=4, num_heads=8, hidden_size=768, units=1024)
QUICK = dict(num_layers=1, num_heads=2, hidden_size=32, units=16)

# transformers + torch: Bort's shape as a BERT config, and AdamW with BERT's no-decay groups.
_TORCH_SETUP = r'''
import numpy as np
import torch
import torch.nn.functional as F
import transformers

batch, length, masks, vocab = spec["batch"], spec["length"], spec["masks"], spec["vocab_size"]
torch.manual_seed(0)
arch = spec["arch"]
config = transformers.BertConfig(vocab_size=vocab, hidden_size=arch["units"], num_hidden_layers=arch["num_layers"],
                                 num_attention_heads=arch["num_heads"], intermediate_size=arch["hidden_size"],
                                 max_position_embeddings=514, type_vocab_size=1, num_labels=2,
                                 hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1)


def adamw(model, lr):
    named = list(model.named_parameters())
    decay = [p for n, p in named if not n.endswith(("bias", "LayerNorm.weight"))]
    no_decay = [p for n, p in named if n.endswith(("bias", "LayerNorm.weight"))]
    return torch.optim.AdamW([dict(params=decay, weight_decay=0.01), dict(params=no_decay, weight_decay=0.0)],
                             lr=lr, eps=1e-6)
'''

MXNET_FINETUNE = _PRELUDE + r'''
import mxnet as mx
import numpy as np
from bort.distributed import init_distributed
from bort.finetune.build import build_classifier, seed_everything
from bort.finetune.config import FinetuneConfig
from bort.finetune.features import Unit
from bort.finetune.trainer import train_step
from bort.kernels import use_kernels
from bort.tasks import get_task
from bort.training.optim import make_trainer, set_gradient_mode, trainable_parameters

batch, length = spec["batch"], spec["length"]
config = FinetuneConfig(task_name="SST", batch_size=batch, max_len=length, **spec["overrides"], **spec["arch"])
task = get_task("SST")
seed_everything(config.seed)
ctx = mx.cpu()
model = build_classifier(config, task, spec["vocab_size"], ctx)
use_kernels(model, ctx)  # as the fine-tuning command does
params = trainable_parameters(model)
set_gradient_mode(params, config.accumulate)  # as the fine-tuning command does
trainer = make_trainer(model, config.optimizer, config.lr, config.epsilon, config.weight_decay)
dist = init_distributed(False)
rng = np.random.RandomState(0)
units = [Unit(rows=[np.concatenate([[0], rng.randint(5, spec["vocab_size"], size=length - 2), [2]]).astype(np.int32)],
              label=int(rng.randint(2)), example=i) for i in range(batch)]


def update(step):
    train_step(model, trainer, params, [units], task.head, 1, config.lr, config, dist, ctx, step, False)
    mx.nd.waitall()
''' + _TIMING

TORCH_FINETUNE = _PRELUDE + _TORCH_SETUP + r'''
model = transformers.BertForSequenceClassification(config).train()
optimizer = adamw(model, 3e-5)
rng = np.random.RandomState(0)
ids = torch.from_numpy(rng.randint(5, vocab, size=(batch, length)).astype(np.int64))
mask = torch.ones((batch, length), dtype=torch.int64)
labels = torch.from_numpy(rng.randint(2, size=batch).astype(np.int64))


def update(step):
    loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss.item()
''' + _TIMING

MXNET_PRETRAIN = _PRELUDE + r'''
import tempfile
import types
import mxnet as mx
import numpy as np
from bort.checkpoint import get_bort_model
from bort.params import save_parameters
from bort.kernels import use_kernels
from bort.pretraining.teacher import load_teacher
from bort.pretraining.trainer import PretrainConfig, forward
from bort.training.optim import clipping_factor, global_grad_norm, make_trainer, trainable_parameters

batch, length, masks, vocab = spec["batch"], spec["length"], spec["masks"], spec["vocab_size"]
ctx = mx.cpu()
mx.random.seed(0)
cfg = PretrainConfig(train_files=[], vocab_size=vocab, teacher_model="bort_4_8_768_1024", batch_size=batch)
student, _ = get_bort_model(cfg.model, vocab_size=vocab, use_decoder=True, ctx=ctx, **spec["arch"])
with tempfile.TemporaryDirectory() as scratch:
    teacher_file = os.path.join(scratch, "teacher.params")
    save_parameters(get_bort_model(cfg.model, vocab_size=vocab, use_decoder=True, **spec["arch"])[0], teacher_file)
    teacher = load_teacher(cfg.model, teacher_file, vocab, ctx, num_heads=spec["arch"]["num_heads"])
fused = use_kernels(student, ctx)  # as bort.pretraining does
use_kernels(teacher.block, ctx)
params = trainable_parameters(student)
trainer = make_trainer(student, cfg.optimizer, cfg.lr, cfg.epsilon, cfg.weight_decay)
rng = np.random.RandomState(0)
positions = np.stack([np.sort(rng.choice(np.arange(1, length - 1), masks, replace=False)) for _ in range(batch)])
data = types.SimpleNamespace(input_ids=rng.randint(5, vocab, size=(batch, length)),
                             valid_length=np.full((batch,), length), masked_positions=positions,
                             masked_ids=rng.randint(5, vocab, size=(batch, masks)),
                             masked_weights=np.ones((batch, masks), dtype=np.float32), num_tokens=batch * length)


def update(step):
    mx.random.seed(step)
    parts = forward(student, teacher, data, ctx, cfg, objective_scale=1.0, fused_loss=fused)
    parts["objective"].backward()
    float(parts["num_masks"].asscalar())
    norm = global_grad_norm(params)
    trainer.set_learning_rate(cfg.lr)
    trainer.update(1.0 / clipping_factor(norm, cfg.max_grad_norm))  # clipping as bort.pretraining.trainer does it
    mx.nd.waitall()
''' + _TIMING

TORCH_PRETRAIN = _PRELUDE + _TORCH_SETUP + r'''
student = transformers.BertForMaskedLM(config).train()
teacher = transformers.BertForMaskedLM(config).eval()
optimizer = adamw(student, 1e-4)
rng = np.random.RandomState(0)
positions = np.stack([np.sort(rng.choice(np.arange(1, length - 1), masks, replace=False)) for _ in range(batch)])
ids = torch.from_numpy(rng.randint(5, vocab, size=(batch, length)).astype(np.int64))
mask = torch.ones((batch, length), dtype=torch.int64)
index = torch.from_numpy(positions.astype(np.int64))
labels = torch.from_numpy(rng.randint(5, vocab, size=(batch, masks)).astype(np.int64))
temperature = 2.0


def masked_logits(model, ids):
    # The MLM head at the masked positions only, as the MXNet student and teacher compute it.
    sequence = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    picked = torch.gather(sequence, 1, index[:, :, None].expand(-1, -1, sequence.shape[-1]))
    return model.cls(picked)


def update(step):
    with torch.no_grad():
        teacher_logits = masked_logits(teacher, ids)
    logits = masked_logits(student, ids)
    mlm = F.cross_entropy(logits.reshape(-1, vocab), labels.reshape(-1))
    soft = -(F.softmax(teacher_logits / temperature, -1) * F.log_softmax(logits / temperature, -1)).sum(-1).mean()
    loss = 0.1 * mlm + 0.5 * temperature ** 2 * soft
    loss.backward()
    torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    loss.item()
''' + _TIMING

#: (work, framework) -> worker program
WORKERS = {("finetune", "mxnet"): MXNET_FINETUNE, ("finetune", "torch"): TORCH_FINETUNE,
           ("pretrain", "mxnet"): MXNET_PRETRAIN, ("pretrain", "torch"): TORCH_PRETRAIN}


def add_arguments(parser):
    parser.add_argument("--quick", action="store_true",
                        help="CI-size run: a tiny model, 2x16, 300 tokens, one update (checks that every worker "
                             "runs; not a measurement)")
    parser.add_argument("--work", default="finetune,pretrain",
                        help="comma-separated: finetune, pretrain (default: %(default)s)")
    parser.add_argument("--frameworks", default="mxnet,torch",
                        help="comma-separated: mxnet (this package), torch (transformers) (default: %(default)s)")
    parser.add_argument("--shape", default="8x128", help="BATCHxLENGTH of one update (default: %(default)s)")
    parser.add_argument("--masks", type=int, default=20,
                        help="pretraining: masked positions per sequence (15%% of 128 is about 20) "
                             "(default: %(default)s)")
    parser.add_argument("--vocab_size", type=int, default=50265,
                        help="vocabulary (RoBERTa's by default: its embedding's update is a large share of a "
                             "step) (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="rounds; each runs every participant once in a fresh process (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed updates per process (default: %(default)s)")
    parser.add_argument("--updates", type=int, default=3, help="timed updates per process (default: %(default)s)")
    parser.add_argument("--finetune_hybridize", default="true", choices=("true", "false"),
                        help="fine-tuning: the package's --hybridize setting (default: %(default)s)")


def run(args):
    from ..cpu_features import describe_cpu, isa_summary
    from .inference import _names, parse_shapes
    from .isolated import run_worker

    arch = FULL_SIZE
    if args.quick:
        arch, args.shape, args.masks, args.vocab_size = QUICK, "2x16", 3, 300
        args.rounds, args.warmup, args.updates = 1, 0, 1
    (batch, length), = parse_shapes(args.shape)
    works = _names(args.work, ("finetune", "pretrain"), "work")
    frameworks = _names(args.frameworks, ("mxnet", "torch"), "framework")
    if min(args.rounds, args.updates) < 1 or args.warmup < 0:
        raise ConfigError("--rounds and --updates must be at least 1, --warmup at least 0")
    if args.masks >= length - 2:
        raise ConfigError(f"--masks {args.masks} must be smaller than the sequence length minus 2")
    cpu = describe_cpu()
    result = dict(cpu=cpu, load_average=os.getloadavg(), batch=batch, length=length, vocab_size=args.vocab_size,
                  arch=arch, quick=bool(args.quick),
                  rounds=args.rounds, updates=args.updates, seconds={})
    times = {}
    for _ in range(args.rounds):
        for work in works:
            for framework in frameworks:
                spec = dict(batch=batch, length=length, masks=args.masks, vocab_size=args.vocab_size, arch=arch,
                            warmup=args.warmup, updates=args.updates, cell="update",
                            overrides=dict(hybridize=args.finetune_hybridize == "true"))
                report = run_worker(WORKERS[(work, framework)], spec)
                times.setdefault((work, framework), []).append(report["cells"]["update"])
    result["load_average_end"] = os.getloadavg()
    print(f"CPU {cpu['model']}, ISA {isa_summary(cpu)}; load average "
          + " ".join(f"{x:.2f}" for x in result["load_average"]) + " at the start, "
          + " ".join(f"{x:.2f}" for x in result["load_average_end"]) + " at the end")
    for (work, framework), per_round in times.items():
        best = min(min(seconds) for seconds in per_round)
        median = sorted(min(seconds) for seconds in per_round)[len(per_round) // 2]
        result["seconds"][f"{work}/{framework}"] = dict(best=best, median_of_rounds=median, all=per_round)
        print(f"{work:9s} {framework:6s} {batch}x{length}: {best:7.3f} s per update (median of rounds "
              f"{median:.3f} s) {cpu['isa']}")
    for work in works:
        mine, theirs = result["seconds"].get(f"{work}/mxnet"), result["seconds"].get(f"{work}/torch")
        if mine and theirs:
            result[f"{work}_speedup_vs_torch"] = theirs["best"] / mine["best"]
            print(f"{work}: this package {theirs['best'] / mine['best']:.2f}x transformers+torch "
                  f"(>1: faster) {cpu['isa']}")
    return result
