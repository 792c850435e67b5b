"""DDP training (worldmodel/train.py under torchrun, gloo backend, 2 CPU processes).

BatchNorm under DDP: every rank normalises with the statistics of its own share of the global batch (plain
BatchNorm, as the official GLASS code; PyTorch has no CPU SyncBatchNorm). So the correct single-process
reference for a global batch split into shards s_0, s_1 is the gradient of (L(s_0) + L(s_1)) / 2 with each
L computed in train mode on its shard alone ("ghost batch" statistics); with a global BatchNorm the loss
would differ by design. The test checks that DDP's averaged gradient equals this reference, and that
`glassworld train` under torchrun logs the same losses as this reference, step after step.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_train import make_dataset, overrides

from worldmodel.checkpoint import load_checkpoint
from worldmodel.data.dataset import ClipConfig, ClipDataset
from worldmodel.models import build_model
from worldmodel.train import ResumableSampler

REPO = Path(__file__).resolve().parents[1]

def _pythonpath() -> str:
    """The repository first, then whatever PYTHONPATH already holds (where the dependencies may live)."""
    return os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))

WORLD, GLOBAL_BATCH, STEPS, GRAD_STEP = 2, 4, 3, 3  # GRAD_STEP: after GMA pretraining, every loss term is on

LAUNCHER = textwrap.dedent("""
    import json, sys
    import torch, torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    from worldmodel.models import build_model
    from worldmodel.train import _LossModule, compose_run_config, train

    args = json.loads(sys.argv[1])
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()

    # part 1: one DDP backward of this rank's shard, exactly as the trainer wraps the model
    torch.manual_seed(0)
    model = build_model("glass", "tiny", 32, 32, {})
    batch = torch.load(args["batch"])
    ddp = DDP(_LossModule(model), find_unused_parameters=True)
    total, terms, aux = ddp(batch[rank::world], args["step"])
    total.backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    if rank == 0:
        torch.save(grads, args["grads"])

    # part 2: the real trainer in the already-initialised process group
    metrics = train(compose_run_config(args["overrides"]))
    with open(args["metrics"] + f".rank{rank}", "w") as f:
        json.dump({"rank": metrics["rank"], "step": metrics["step"], "world_size": metrics["world_size"]}, f)
    dist.destroy_process_group()
""")


def _ref_losses(model, shards: list[torch.Tensor], step: int) -> torch.Tensor:
    """Mean of the per-shard losses, each shard in train mode on its own (per-rank BatchNorm statistics)."""
    return torch.stack([model.training_losses(s, step)[0] for s in shards]).mean()


@pytest.mark.slow
def test_ddp_matches_one_process_on_the_same_global_batch(tmp_path):
    torch.set_num_threads(1)
    data = make_dataset(tmp_path / "data", n_train=3, n_val=1, frames=8)  # 15 clips: 3 batches of 2 per rank
    ds = ClipDataset(data, "train", ClipConfig(clip_len=4, ground_truth=False))  # tiny preset: clips of 4
    batch = torch.stack([ds[i]["frames"] for i in range(GLOBAL_BATCH)]).float() / 127.5 - 1  # (4, 4, 3, 32, 32)
    torch.save(batch, tmp_path / "batch.pt")
    run_dir = tmp_path / "run"
    args = {
        "batch": str(tmp_path / "batch.pt"), "grads": str(tmp_path / "grads.pt"), "step": GRAD_STEP,
        "metrics": str(tmp_path / "metrics"),
        "overrides": overrides(data, run_dir, f"train.steps={STEPS}", f"train.batch_size={GLOBAL_BATCH}",
                               "seed=0", "train.log_every=1", "train.dead_code_window=0", "train.image_every=0",
                               "train.checkpoint_every=2"),
    }
    (tmp_path / "launch.py").write_text(LAUNCHER)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": _pythonpath()}
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={WORLD}",
                        str(tmp_path / "launch.py"), json.dumps(args)], env=env, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]

    # --- gradients: DDP's all-reduced average == the mean of the per-shard losses' gradients
    torch.manual_seed(0)
    ref = build_model("glass", "tiny", 32, 32, {})
    _ref_losses(ref, [batch[k::WORLD] for k in range(WORLD)], GRAD_STEP).backward()
    ddp_grads = torch.load(tmp_path / "grads.pt")
    ref_grads = {n: p.grad for n, p in ref.named_parameters() if p.grad is not None}
    assert ddp_grads.keys() == ref_grads.keys() and len(ref_grads) > 20
    for n, g in ref_grads.items():
        torch.testing.assert_close(ddp_grads[n], g, rtol=1e-4, atol=1e-6, msg=lambda m, n=n: f"{n}: {m}")
    # ... and it is not what one rank alone would give (the test can fail)
    torch.manual_seed(0)
    one = build_model("glass", "tiny", 32, 32, {})
    one.training_losses(batch[0::WORLD], GRAD_STEP)[0].backward()
    assert any(not torch.allclose(p.grad, ref_grads[n], rtol=1e-3, atol=1e-5)
               for n, p in one.named_parameters() if p.grad is not None)

    # --- the trainer: only rank 0 writes; logged losses == the single-process reference, step by step
    ranks = [json.loads((tmp_path / f"metrics.rank{k}").read_text()) for k in range(WORLD)]
    assert [m["world_size"] for m in ranks] == [WORLD] * WORLD and all(m["step"] == STEPS for m in ranks)
    assert len(list((run_dir / "tb").glob("events.*"))) == 1
    ckpt = load_checkpoint(run_dir / "checkpoint.pt")
    assert ckpt["rng"]["world_size"] == WORLD and len(ckpt["rng"]["states"]) == WORLD
    assert json.loads((run_dir / "metrics.json").read_text())["rank"] == 0

    torch.manual_seed(0)  # train() seeds rank 0 with seed * world + rank = 0 and DDP broadcasts its weights
    ref = build_model("glass", "tiny", 32, 32, {})
    cfg = ref.cfg
    opt = torch.optim.Adam(ref.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, cfg.lr_milestones, cfg.lr_gamma)
    samplers = [ResumableSampler(ds, WORLD, k, seed=0) for k in range(WORLD)]
    orders = [list(s) for s in samplers]  # epoch 0: enough clips for STEPS batches of 2 per rank
    per_rank = GLOBAL_BATCH // WORLD
    ref_losses = []
    for step in range(STEPS):
        shards = [torch.stack([ds[i]["frames"] for i in orders[k][step * per_rank:(step + 1) * per_rank]])
                  [:, :cfg.num_obs(step)].float() / 127.5 - 1 for k in range(WORLD)]
        loss = _ref_losses(ref, shards, step)
        opt.zero_grad()
        loss.backward()
        for p in ref.parameters():
            if p.grad is not None:
                torch.nan_to_num_(p.grad, nan=0.0, posinf=1e5, neginf=-1e5)
        opt.step()
        sched.step()
        ref_losses.append(loss.item())
    assert len(orders[0]) >= STEPS * per_rank

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    ea.Reload()
    logged = [e.value for e in ea.Scalars("losses/total")]
    assert logged == pytest.approx(ref_losses, rel=1e-4)
    assert logged[0] == pytest.approx(ref_losses[0], rel=1e-6)  # before any update: same weights, same shards
