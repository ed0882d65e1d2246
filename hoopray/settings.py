"""The plain, picklable settings every stage gets, and what makes each stage's outputs stale."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from typing import Any

from hoopray import manifest as mf
from hoopray.config import config_hash, to_plain

# Keys of ``teams`` that change decisions in resolve, not the fitted model.
RESOLVE_TEAM_KEYS = ("override", "knn_k")
# Keys of ``teams`` that only steer planning.
PLAN_TEAM_KEYS = ("refit_fraction",)
# Keys of ``output`` that change rendered videos.
RENDER_KEYS = ("render", "crf", "masks", "mask_opacity", "max_masks")
STORAGE_ENV = ("AWS_ENDPOINT_URL",)


@dataclass(frozen=True)
class Settings:
    """Resolved from the Hydra config once on the driver and shipped to every worker."""

    out_root: str
    models: dict[str, Any]
    roles: dict[str, Any]
    observe: dict[str, Any]
    resolve: dict[str, Any]
    teams: dict[str, Any]
    output: dict[str, Any]
    ray: dict[str, Any]
    data_root: str = ""
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @classmethod
    def from_cfg(cls, cfg: Any) -> Settings:
        from hoopray import store

        return cls(
            out_root=store.normalise(str(cfg.output.root)),
            models=to_plain(cfg.models) or {},
            roles=to_plain(cfg.roles) or {},
            observe=to_plain(cfg.observe) or {},
            resolve=to_plain(cfg.resolve) or {},
            teams=to_plain(cfg.teams) or {},
            output=to_plain(cfg.output) or {},
            ray=to_plain(cfg.ray) or {},
            data_root=store.normalise(str(cfg.data.root)),
        )

    @property
    def fit_teams_cfg(self) -> dict[str, Any]:
        skip = (*RESOLVE_TEAM_KEYS, *PLAN_TEAM_KEYS)
        return {k: v for k, v in self.teams.items() if k not in skip}

    def hashes(self) -> mf.StageHashes:
        """Hashes of the config each stage's outputs depend on, and nothing else."""
        models = self.models
        render_keys = {k: v for k, v in self.output.items() if k in RENDER_KEYS}
        return mf.StageHashes(
            team=config_hash(
                models.get("detector"), models.get("embedder"), self.fit_teams_cfg, self.roles
            ),
            observe=config_hash(models, self.observe, self.roles),
            resolve=config_hash(self.resolve, {k: self.teams.get(k) for k in RESOLVE_TEAM_KEYS}),
            render=config_hash(render_keys),
        )

    @property
    def refit_fraction(self) -> float:
        return float(self.teams.get("refit_fraction", 0.2))

    @property
    def gpu(self) -> dict[str, Any]:
        """The GPU actor pool's settings (``ray.observe``), for pass 1 and observe alike."""
        return dict(self.ray.get("observe") or {})


def ray_init_kwargs(cfg: Any) -> dict[str, Any]:
    """Arguments for ``ray.init`` from ``cfg.ray`` (used by the entry points only).

    The storage endpoint (``AWS_ENDPOINT_URL``, from the environment or
    ``storage.endpoint_url``) travels to the workers in the runtime environment.
    """
    ray_cfg = to_plain(cfg.ray) or {}
    kwargs: dict[str, Any] = {"ignore_reinit_error": True, "include_dashboard": False}
    address = ray_cfg.get("address")
    if address:
        kwargs["address"] = address
    else:
        kwargs["address"] = "local"  # a new local Ray, never one a `ray start` left running
        for key in ("num_cpus", "num_gpus"):
            if ray_cfg.get(key) is not None:
                kwargs[key] = ray_cfg[key]
    env = {k: os.environ[k] for k in STORAGE_ENV if os.environ.get(k)}
    if env:
        kwargs["runtime_env"] = {"env_vars": env}
    return kwargs
