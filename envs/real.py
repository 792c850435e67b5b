"""The real game behind a dream: ALE (Atari) episodes with the dream's observation, action space and task.

:class:`RealGameVectorEnv` speaks exactly the dream's vector interface (:class:`envs.vector.TaskVectorEnv`):
observations are the game screen cropped and resized as the training data was (``worldmodel.data.atari``),
actions are (shift, code) pairs mapped to joystick actions by an *action map* (``(n_shifts, K)`` ALE action
ids, learned by :func:`agents.mapping.learn_action_map` or the name-based :func:`heuristic_action_map`), and the
agent's position comes from the console's RAM instead of a foreground mask. So a policy trained in the dream
runs here unchanged and is scored by the same task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode

from worldmodel.data.atari import FULL_SCREEN, GAME_PRESETS, GamePreset, native_to_output, resolve_game

from .tasks import Task, TaskState, check_observation_mode, make_task, mask_image
from .vector import TaskVectorEnv, put_rows, take_rows

log = logging.getLogger(__name__)

# joystick names of ALE actions 0..17
JOYSTICK = ["NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT", "UPFIRE",
            "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE", "DOWNLEFTFIRE"]


@dataclass
class RealGameConfig:
    """How the real game is played (defaults match ``glassworld data atari``)."""

    game: str = "Tennis"  # ALE game name (Tennis, Breakout, ...); needs a RAM agent position in GAME_PRESETS
    frames_per_step: int = 4  # emulator frames per env step = data frame skip x (clip frame_skip + 1)
    start_steps_max: int = 30  # a new episode starts after 0..this many random joystick steps (seeded)
    ale_seed: int = 0  # the emulator's own seed (sticky actions are off, so play is deterministic)


def real_game_config(metadata: dict[str, Any], **overrides: Any) -> RealGameConfig:
    """The real game a model was trained on, from its checkpoint card (``model.metadata``).

    Raises a ValueError naming ``game=`` when the card does not say (models trained on non-Atari data).
    """
    gen = dict(metadata.get("generator") or {})
    cfg: dict[str, Any] = {}
    if gen.get("command") == "atari" and gen.get("game"):
        cfg["game"] = str(gen["game"])
        cfg["frames_per_step"] = int(gen.get("frame_skip", 4)) * (int(metadata.get("frame_skip") or 0) + 1)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if "game" not in cfg:
        raise ValueError("this model's checkpoint card does not name an Atari game (it was not trained on "
                         "`glassworld data atari` data); pass game=Tennis|Breakout to play a real game")
    return RealGameConfig(**cfg)


def heuristic_action_map(shift_names: list[str], num_codes: int, legal: list[int]) -> np.ndarray:
    """(n_shifts, K) ALE action ids from shift names alone ("up-left" -> UPLEFT, codes ignored).

    Directions the game does not have fall back to their horizontal, then vertical part, then NOOP.
    """
    table = np.zeros((len(shift_names), num_codes), dtype=np.int64)
    for i, name in enumerate(shift_names):
        parts = [p for p in str(name).lower().replace("_", "-").split("-") if p in ("up", "down", "left", "right")]
        vert = [p.upper() for p in parts if p in ("up", "down")]
        horiz = [p.upper() for p in parts if p in ("left", "right")]
        for cand in ("".join(vert + horiz), "".join(horiz), "".join(vert), "NOOP"):
            if cand in JOYSTICK and JOYSTICK.index(cand) in legal:
                table[i, :] = JOYSTICK.index(cand)
                break
    return table


def screen_to_frame(screen: np.ndarray, crop: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop a native (210, 160, 3) screen and area-resize it to (H, W, 3), as ``glassworld data atari`` does."""
    from PIL import Image

    top, bottom, left, right = crop
    h, w = size
    if (bottom - top, right - left) == (h, w):
        return screen[top:bottom, left:right].copy()
    img = Image.fromarray(screen).resize((w, h), Image.Resampling.BOX, box=(left, top, right, bottom))
    return np.asarray(img)


class RealCore:
    """N ALE emulators behind the batched-core interface (:class:`envs.vector.BatchedCore`).

    Emulators step one after another (that part cannot be batched); positions, rewards and observations are
    tensors like the dream's.
    """

    def __init__(self, cfg: RealGameConfig, num_envs: int, height: int, width: int, task: Task,
                 action_map: np.ndarray | None, device: str | torch.device = "cpu", observation: str = "rgb",
                 segmenter: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        check_observation_mode(observation)
        if observation == "mask" and segmenter is None:
            raise ValueError("observation='mask' in the real game needs a world model to segment its frames "
                             "(RealGameVectorEnv.for_model with a model that has segment())")
        self.observation_mode, self.segmenter = observation, segmenter
        try:
            import ale_py
            from ale_py import ALEInterface, LoggerMode
        except ImportError as e:  # pragma: no cover - ale-py is a dependency
            raise ImportError("the real game needs ale-py: pip install ale-py (it ships the ROMs)") from e
        self.cfg = cfg
        self.rom_id = resolve_game(cfg.game)
        self.preset: GamePreset = GAME_PRESETS.get(self.rom_id, GamePreset(FULL_SCREEN))
        if self.preset.agent is None:
            raise ValueError(f"the real game {cfg.game!r} has no RAM agent position (worldmodel.data.atari."
                             f"GAME_PRESETS); tasks need one: use one of "
                             f"{', '.join(sorted(g for g, pr in GAME_PRESETS.items() if pr.agent is not None))}")
        self.num_envs, self.height, self.width, self.task = int(num_envs), int(height), int(width), task
        self.device = torch.device(device)
        ALEInterface.setLoggerMode(LoggerMode.Error)
        rom = ale_py.roms.get_rom_path(self.rom_id)
        self.ales = []
        for i in range(self.num_envs):
            ale = ALEInterface()
            ale.setInt("random_seed", (int(cfg.ale_seed) + i) % 2**31)
            ale.setFloat("repeat_action_probability", 0.0)
            ale.setInt("frame_skip", 1)
            ale.loadROM(str(rom))
            self.ales.append(ale)
        self.legal = [int(a.value) for a in self.ales[0].getMinimalActionSet()]  # ALE action ids
        self.action_map = np.zeros((1, 1), dtype=np.int64)
        if action_map is not None:
            self.set_action_map(action_map)
        self.frames = torch.zeros(num_envs, height, width, 3, dtype=torch.uint8, device=self.device)
        self.task_state: TaskState = {}
        self.bank_index = np.full(num_envs, -1, dtype=np.int64)
        self.is_success = torch.zeros(num_envs, dtype=torch.bool, device=self.device)
        self.game_reward = torch.zeros(num_envs, device=self.device)

    def set_action_map(self, action_map: np.ndarray) -> None:
        """(n_shifts, K) ALE action ids used by :meth:`step`."""
        action_map = np.asarray(action_map)
        if action_map.ndim != 2 or action_map.dtype.kind not in "iu" or not np.isin(action_map, self.legal).all():
            raise ValueError(f"action_map must be (n_shifts, K) ALE action ids of {self.cfg.game}'s minimal set "
                             f"{self.legal}, got {action_map.dtype} {action_map.shape}")
        self.action_map = action_map.astype(np.int64)

    def seed(self, rng: np.random.Generator) -> None:
        """Nothing to seed: emulators are deterministic; episode starts draw from the env's ``np_random``."""

    def _observe(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame (H, W, 3) uint8 and agent position (2,) output px of emulator i."""
        ale = self.ales[i]
        frame = screen_to_frame(ale.getScreenRGB(), self.preset.crop, (self.height, self.width))
        uv = self.preset.agent(ale.getRAM()[None].astype(np.int64))[0]
        return frame, native_to_output(uv, self.preset.crop, (self.height, self.width))

    def _act(self, i: int, joystick: int) -> tuple[float, bool]:
        ale, total = self.ales[i], 0.0
        for _ in range(self.cfg.frames_per_step):
            total += ale.act(int(joystick))
            if ale.game_over():
                return total, True
        return total, False

    @torch.no_grad()
    def reset(self, rng: np.random.Generator, rows: torch.Tensor | None = None,
              options: dict[str, Any] | None = None) -> None:
        options = dict(options or {})
        if "frame" in options:
            raise ValueError("the real game cannot start from a given frame; only options={'target': (x, y)}")
        unknown = sorted(set(options) - {"target"})
        if unknown:
            raise ValueError(f"unknown reset option(s) {unknown}; known: 'target'")
        idx = np.arange(self.num_envs) if rows is None else rows.cpu().numpy()
        if idx.size == 0:
            return
        frames, pos = [], []
        for i in idx:  # emulators are independent machines: one at a time
            self.ales[i].reset_game()
            for _ in range(int(rng.integers(0, self.cfg.start_steps_max + 1))):
                if self._act(i, int(rng.choice(self.legal)))[1]:
                    self.ales[i].reset_game()
            f, p = self._observe(i)
            frames.append(f)
            pos.append(p)
        pos_t = torch.as_tensor(np.stack(pos), dtype=torch.float32, device=self.device)  # (k, 2)
        target = options.get("target")
        if target is not None:
            target = torch.as_tensor(np.asarray(target, np.float32), device=self.device).reshape(-1, 2)
            target = target.expand(len(idx), 2)
        sub_ts = self.task.init(pos_t, torch.ones(len(idx), dtype=torch.bool, device=self.device), rng, target)
        sub_frames = torch.as_tensor(np.stack(frames), device=self.device)
        if rows is None:
            self.task_state, self.frames = sub_ts, sub_frames
            self.is_success = torch.zeros_like(self.is_success)
            self.game_reward = torch.zeros_like(self.game_reward)
            return
        self.task_state = put_rows(self.task_state, rows, sub_ts)
        self.frames = self.frames.index_copy(0, rows, sub_frames)
        self.is_success = self.is_success.index_fill(0, rows, False)
        self.game_reward = self.game_reward.index_fill(0, rows, 0.0)

    @torch.no_grad()
    def step_joystick(self, joystick: np.ndarray, rows: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """Step envs ``rows`` with raw ALE action ids ``joystick`` (N,); returns task reward and terminated (N,)."""
        idx = np.arange(self.num_envs) if rows is None else rows.cpu().numpy()
        reward = torch.zeros(self.num_envs, device=self.device)
        terminated = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        if idx.size == 0:
            return reward, terminated
        frames, pos, game_r, over = [], [], [], []
        for i in idx:
            r, done = self._act(i, int(joystick[i]))
            f, p = self._observe(i)
            frames.append(f)
            pos.append(p)
            game_r.append(r)
            over.append(done)
        rows_t = torch.as_tensor(idx, dtype=torch.long, device=self.device)
        pos_t = torch.as_tensor(np.stack(pos), dtype=torch.float32, device=self.device)
        ts = take_rows(self.task_state, rows_t)
        r, term, ts = self.task.step(ts, pos_t, torch.ones(len(idx), dtype=torch.bool, device=self.device))
        success = self.task.success(ts, term)
        term = term | torch.as_tensor(over, device=self.device)  # game over ends the episode (not a success)
        self.task_state = put_rows(self.task_state, rows_t, ts)
        self.frames = self.frames.index_copy(0, rows_t, torch.as_tensor(np.stack(frames), device=self.device))
        self.is_success = self.is_success.index_copy(0, rows_t, success)
        self.game_reward = self.game_reward.index_copy(
            0, rows_t, torch.as_tensor(game_r, dtype=torch.float32, device=self.device))
        return reward.index_copy(0, rows_t, r), terminated.index_copy(0, rows_t, term)

    def step(self, action: torch.Tensor, rows: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Step with (shift, code) actions (N, 2) through the action map."""
        a = action.cpu().numpy()
        return self.step_joystick(self.action_map[a[:, 0], a[:, 1]], rows)

    @torch.no_grad()
    def observation(self) -> torch.Tensor:
        """(N, H, W, 3) uint8: the real frames (or the world model's agent masks of them) with the task marker."""
        if self.observation_mode == "rgb":
            return self.task.draw(self.frames, self.task_state)
        masks = self.segmenter(self.frames.permute(0, 3, 1, 2).contiguous())  # (N, 1, H, W) in [0, 1]
        return self.task.draw(mask_image(masks.to(self.frames.device)), self.task_state)

    def info_tensors(self) -> dict[str, torch.Tensor]:
        out = dict(self.task.info(self.task_state))
        out["is_success"] = self.is_success
        out["game_reward"] = self.game_reward
        return out

    def close(self) -> None:
        self.ales = []


class RealGameVectorEnv(TaskVectorEnv):
    """N real ALE games with the dream's spaces and task (see the module docstring).

    Args:
        num_envs: number of emulators.
        height, width: observation size (the world model's).
        shift_names, code_names: the dream's action meanings (``action_meanings`` of the dream env).
        action_map: (n_shifts, K) ALE action ids; None = :func:`heuristic_action_map`.
        cfg: the game and its step size (:func:`real_game_config` reads them from a checkpoint card).
        task, task_kwargs, max_episode_steps, autoreset_mode, render_mode: as the dream's vector env.
        places: recorded (start, later) agent positions for ``reach`` targets (the world model's
            ``reach_places``; :meth:`for_model` passes them); shift_grid: the dream's (n_shifts, 2) px grid, which
            resolves ``target_axes="auto"`` (:func:`envs.tasks.moving_axes`; :meth:`for_model` passes it).
        observation: "rgb" (the real frames) or "mask" (``segmenter``'s agent masks of them as grey images, the
            dream's ``observation="mask"``); segmenter: uint8 frames (N, 3, H, W) -> masks (N, 1, H, W) in [0, 1].
    """

    def __init__(self, num_envs: int, height: int, width: int, shift_names: list[str], code_names: list[str],
                 cfg: RealGameConfig | None = None, action_map: np.ndarray | None = None, task: str = "reach",
                 task_kwargs: dict[str, Any] | None = None, max_episode_steps: int | None = None,
                 autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP, render_mode: str | None = None,
                 render_scale: int | None = None, device: str | torch.device = "cpu",
                 places: tuple[torch.Tensor, torch.Tensor] | None = None, observation: str = "rgb",
                 segmenter: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 shift_grid: torch.Tensor | None = None) -> None:
        cfg = cfg or RealGameConfig()
        task_obj = make_task(task, height, width, task_kwargs, places, shift_grid)
        n_shifts, k = len(shift_names), len(code_names)
        core = RealCore(cfg, num_envs, height, width, task_obj, None, device, observation, segmenter)
        if action_map is None:
            action_map = heuristic_action_map(shift_names, k, core.legal)
            log.debug("real %s: no action map given, starting from the name-based one", cfg.game)
        if np.shape(action_map) != (n_shifts, k):
            raise ValueError(f"action_map must be (n_shifts, K) = ({n_shifts}, {k}), got {np.shape(action_map)}")
        core.set_action_map(action_map)
        obs = spaces.Box(0, 255, (int(height), int(width), 3), np.uint8)
        act = spaces.MultiDiscrete([n_shifts, k])
        self.game_config = cfg
        self._setup(core, obs, act, (list(shift_names), list(code_names)), max_episode_steps, autoreset_mode,
                    render_mode, render_scale, f"{cfg.game} (real) x{num_envs}")

    @classmethod
    def for_model(cls, model: Any, num_envs: int, action_map: np.ndarray | None = None, game: str | None = None,
                  **kwargs: Any) -> RealGameVectorEnv:
        """The real game of a world model (game and step size from its checkpoint card)."""
        cfg = real_game_config(dict(getattr(model, "metadata", {}) or {}), game=game)
        codes = list(model.code_meanings) if model.code_meanings else [f"code {i}" for i in range(model.num_codes)]
        kwargs.setdefault("places", getattr(model, "reach_places", None))
        kwargs.setdefault("shift_grid", getattr(model, "shift_grid", None))  # target_axes="auto" as in the dream
        if kwargs.get("observation", "rgb") == "mask" and hasattr(model, "segment"):
            kwargs.setdefault("segmenter", lambda frames: model.segment(frames.to(model.device)[:, None])[:, 0])
        return cls(num_envs, model.height, model.width, list(model.shift_names), codes, cfg, action_map, **kwargs)

    # -- the real game's part of the agent interface (besides envs.vector.CoreEdge's) -------------------
    @property
    def legal(self) -> list[int]:
        """The game's minimal ALE action set (joystick ids)."""
        return list(self.core.legal)

    @property
    def action_map(self) -> np.ndarray:
        """(n_shifts, K) int64 ALE joystick id of each (shift, code) action."""
        return self.core.action_map

    def set_action_map(self, action_map: np.ndarray) -> None:
        """Replace the (shift, code) -> joystick map ((n_shifts, K) legal ALE ids; one clear error otherwise)."""
        self.core.set_action_map(action_map)

    def play_joystick(self, joystick: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Step every emulator with raw ALE ids ``joystick`` (N,), bypassing the action map (for learning it).

        Finished episodes restart at once with start noise from ``rng``; no time limit, no autoreset bookkeeping
        (call :meth:`reset` before the next ordinary :meth:`step`).
        Returns: the frames the step produced (N, H, W, 3) uint8 (before any restart), terminated (N,) bool.
        """
        _, terminated = self.core.step_joystick(np.asarray(joystick))
        frames, done = self.core.frames.cpu().numpy(), terminated.cpu().numpy()
        if done.any():
            self.core.reset(rng, torch.as_tensor(np.flatnonzero(done), device=self.device))
        return frames, done

    def close_extras(self, **kwargs: Any) -> None:
        super().close_extras(**kwargs)
        self.core.close()

