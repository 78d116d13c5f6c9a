"""The trials each figure needs, derived from a profile and nothing else."""

from __future__ import annotations

from fwstudy.config import TrialConfig, default_threads, modes_for
from fwstudy.profile import Profile


def training_speed_configs(profile: Profile) -> list[TrialConfig]:
    """Every workload × mode × framework the profile names, repeats outermost and the two
    frameworks adjacent, so that a drift of the machine touches both sides alike (rule 7)."""
    threads = profile.threads or default_threads()
    configs = []
    for repeat in range(profile.repeats):
        for workload in profile.workloads:
            for mode in profile.modes:
                for framework in profile.frameworks:
                    if mode not in modes_for(framework, workload):
                        continue
                    configs.append(
                        TrialConfig(
                            workload=workload,
                            framework=framework,
                            mode=mode,
                            steps=profile.steps,
                            warmup=profile.warmup,
                            threads=threads,
                            device=profile.device,
                            repeat=repeat,
                            timeout_s=profile.trial_timeout_s,
                        )
                    )
    return configs
