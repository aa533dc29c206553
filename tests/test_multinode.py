"""Multi-node launches without a cluster: which process is rank zero before the Trainer exists, for each
launcher's environment, and the Slurm environment the Trainer gets. The two-node run itself (two torchrun
agents on this machine) is in tests/test_train_e2e.py (test_two_torchrun_nodes_continue_...)."""

from __future__ import annotations

import lightning as L
import pytest
from lightning.pytorch.plugins.environments import SLURMEnvironment

from infir.training.console import is_rank_zero
from infir.training.distributed import cluster_plugins
from infir.training.run import LAUNCHER_RANK_VARIABLES, launcher_rank

SRUN_TASK_3_OF_4 = {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "2", "SLURM_NNODES": "2", "SLURM_PROCID": "3",
                    "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NAME": "train", "SLURM_JOB_ID": "42",
                    "SLURM_NODELIST": "gpu[1-2]"}


@pytest.mark.parametrize("env,zero", [
    ({}, True),                                                       # a plain `python train.py`
    ({"RANK": "0", "LOCAL_RANK": "0", "GROUP_RANK": "0"}, True),     # torchrun, first node
    ({"RANK": "1", "LOCAL_RANK": "0", "GROUP_RANK": "1"}, False),    # torchrun, second node: LOCAL_RANK is 0 again
    ({"SLURM_PROCID": "0", "SLURM_LOCALID": "0"}, True),              # srun task 0
    ({"SLURM_PROCID": "2", "SLURM_LOCALID": "0"}, False),             # srun, first task of the second node
    ({"LOCAL_RANK": "1", "NODE_RANK": "0"}, False),                   # Lightning's launcher, second process
    ({"LOCAL_RANK": "0", "NODE_RANK": "1"}, False),                   # Lightning's launcher, second node
    ({"SLURM_PROCID": "0", "LOCAL_RANK": "1"}, False),                # Lightning's processes inside one Slurm task
])
def test_exactly_the_jobs_first_process_is_rank_zero_before_the_trainer_exists(monkeypatch, env, zero):
    for key in (*LAUNCHER_RANK_VARIABLES, "GROUP_RANK", "SLURM_LOCALID"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert (launcher_rank() == 0) is zero
    assert is_rank_zero() is zero  # the console's config tree and progress lines follow the same rule


def _restore_rank_zero_after_the_test(monkeypatch) -> None:
    """Lightning's rank_zero_only objects hold the rank process-wide: a later test's logger would stay silent."""
    import lightning.fabric.utilities.rank_zero as fabric_rank_zero
    import lightning.pytorch.utilities.rank_zero as pytorch_rank_zero
    import lightning_utilities.core.rank_zero as utilities_rank_zero

    for module in (utilities_rank_zero, fabric_rank_zero, pytorch_rank_zero):
        monkeypatch.setattr(module.rank_zero_only, "rank", getattr(module.rank_zero_only, "rank", 0))


def test_an_srun_task_gets_lightnings_slurm_environment_without_auto_requeue(monkeypatch):
    """Lightning's auto-requeue would save hpc_ckpt_*.ckpt and load it on the next start whatever `resume` says;
    a resubmitted job continues through resume=auto instead."""
    for key, value in SRUN_TASK_3_OF_4.items():
        monkeypatch.setenv(key, value)
    _restore_rank_zero_after_the_test(monkeypatch)  # the Trainer sets the process-wide rank to 3
    trainer = L.Trainer(accelerator="cpu", devices=2, num_nodes=2, strategy="ddp", plugins=cluster_plugins(),
                        logger=False, enable_checkpointing=False, enable_progress_bar=False)
    environment = trainer._accelerator_connector.cluster_environment
    assert isinstance(environment, SLURMEnvironment) and not environment.auto_requeue
    assert (environment.world_size(), environment.global_rank(), environment.node_rank()) == (4, 3, 1)
    assert launcher_rank() > 0
    monkeypatch.delenv("SLURM_NTASKS")
    assert cluster_plugins() == []  # outside srun: Lightning's own detection (torchrun, its launcher)
