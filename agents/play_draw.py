"""Drawing the viewer: frames, the keypoint overlay, the HUD and the help overlay (:class:`ViewerDrawing`, a
mixin of :class:`agents.play_viewer.Viewer`, which owns the window, the layout and the state drawn here)."""

from __future__ import annotations

from typing import Any

import numpy as np

KEYPOINT_MIN_MU = 0.05  # keypoints fainter than this are not drawn

# colours (RGB)
HUD_BG = (24, 24, 28)
HUD_FG = (230, 230, 230)
HUD_DIM = (150, 150, 160)
HUD_ACCENT = (255, 0, 255)  # the task marker colour of envs.tasks (the target)
HUD_WARN = (255, 190, 60)
HUD_REC = (235, 60, 60)


def _signed(value: float, digits: int) -> str:
    """``+0.125`` / ``-1.50``, with no ``-0.000`` for tiny negatives."""
    r = round(float(value), digits)
    return f"{(r if r != 0 else 0.0):+.{digits}f}"


class ViewerDrawing:
    """The drawing half of the viewer (state and layout come from :class:`agents.play_viewer.Viewer`)."""

    def _text(self, text: str, color: tuple[int, int, int] = HUD_FG) -> Any:
        key = (text, color)
        surf = self._font_cache.get(key)
        if surf is None:
            if len(self._font_cache) > 512:
                self._font_cache.clear()
            surf = self._font_cache[key] = self.font.render(text, True, color)
        return surf

    def _blit_frame(self, frame: np.ndarray, pane: int) -> None:
        pg = self.pg
        h, w = frame.shape[:2]
        surf = pg.image.frombuffer(np.ascontiguousarray(frame).tobytes(), (w, h), "RGB")  # (H, W, 3) bytes
        x, y, fw, fh = self.frame_rect(pane)
        # nearest neighbour, straight into the window (the source must have the window's pixel format)
        pg.transform.scale(surf.convert(self.screen), (fw, fh), self.screen.subsurface((x, y, fw, fh)))

    def _draw_keypoints(self, keypoints: Any, pane: int) -> None:
        """Circles at a keypoint model's keypoints (K, 3) = (x, y) frame px and mu in [0, 1] (no-op without)."""
        if keypoints is None:
            return
        kp = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
        x0, y0, fw, fh = self.frame_rect(pane)
        h, w = self.frame_hw
        radius = max(2, self.scale)
        for x, y, mu in kp:
            if not (np.isfinite(x) and np.isfinite(y)) or mu < KEYPOINT_MIN_MU:
                continue
            level = int(80 + 175 * min(1.0, float(mu)))
            centre = (int(x0 + (x + 0.5) * fw / w), int(y0 + (y + 0.5) * fh / h))
            self.pg.draw.circle(self.screen, (level, level, 0), centre, radius, width=max(1, radius // 3))

    def _fmt_xy(self, key: str) -> str:
        v = self.info.get(key)
        if v is None:
            return "?"
        a = np.asarray(v, dtype=np.float64).reshape(-1)
        return f"({a[0]:.0f}, {a[1]:.0f})" if a.size >= 2 else "?"

    def _hud_lines(self) -> list[list[tuple[str, tuple[int, int, int]]]]:
        sname = self.shift_names[self.shift] if 0 <= self.shift < len(self.shift_names) else str(self.shift)
        code_txt = self.code_label(self.code)
        ctrl = "you" if self.control == "you" else f"policy {self.cfg.policy or ''}".strip()
        line1 = [(f"shift {sname}", HUD_FG), (f"   {code_txt}", HUD_FG), (f"   control: {ctrl}", HUD_DIM)]
        line2 = [(f"step {self.episode_steps}", HUD_FG), (f"   episode {self.episode}", HUD_DIM),
                 (f"   reward {_signed(self.reward, 3)}", HUD_FG),
                 (f"   return {_signed(self.episode_return, 2)}", HUD_FG)]
        dist = self.info.get("distance")
        dist_txt = f"{float(dist):.1f} px" if dist is not None else "?"
        line3 = [(f"agent {self._fmt_xy('position')}", HUD_FG), ("   target ", HUD_DIM),
                 (self._fmt_xy("target"), HUD_ACCENT), (f"   distance {dist_txt}", HUD_FG)]
        if self.real is not None and "distance" in self.real.info:
            line3.append((f"   real {float(self.real.info['distance']):.1f} px", HUD_DIM))
        fps = f"{self.fps_ema:.1f}" if self.fps_ema else "-"
        tgt = f"{self.fps_target:g}" if self.fps_target else "max"
        step_ms = f"{self.step_ms_ema:.1f} ms" if self.step_ms_ema is not None else "-"
        line4 = [(f"{fps} fps (target {tgt})", HUD_FG), (f"   step {step_ms}", HUD_DIM)]
        if self.recorder is not None:
            line4.append(("   REC", HUD_REC))
        if self.paused:
            line4.append(("   PAUSED", HUD_WARN))
        if self.message_frames > 0:
            line4.append((f"   {self.message}", HUD_WARN))
        else:
            line4.append(("   H: help", HUD_DIM))
        return [line1, line2, line3, line4]

    def _draw_hud(self) -> None:
        sw, sh = self.screen.get_size()
        _, _, _, fh = self.frame_rect(0)
        self.screen.fill(HUD_BG, (0, fh, sw, sh - fh))
        y = fh + 4
        if self.real is not None:  # pane names centred under each pane
            for pane, label in ((0, "dream"), (1, self.real.name)):
                x, _, fw, _ = self.frame_rect(pane)
                s = self._text(label, HUD_WARN)
                self.screen.blit(s, (x + (fw - s.get_width()) // 2, y))
            y += self.line_h
        for line in self._hud_lines():
            x = 6
            for text, color in line:
                s = self._text(text, color)
                self.screen.blit(s, (x, y))
                x += s.get_width()
            y += self.line_h

    def code_label(self, code: int) -> str:
        """What the HUD says about a code: ``code 3 'UPRIGHTFIRE 14%' (key 2)``, ``, idle`` for the idle code."""
        name = self.code_names[code] if 0 <= code < len(self.code_names) else ""
        text = f"code {code}" + (f" '{name}'" if name and name != f"code {code}" else "")
        key = self.keyed.index(code) + 1 if code in self.keyed else None
        return text + f" ({'key ' + str(key) if key else 'no key'}{', idle' if code == self.idle else ''})"

    def code_key_lines(self) -> list[tuple[str, str]]:
        """One help line per code key (1..n: the codes in use, with their meanings; 0: the idle code)."""
        lines = [(str(k + 1), self.code_label(code).rsplit(" (", 1)[0]) for k, code in enumerate(self.keyed)]
        name = self.code_names[self.idle]
        idle = f"the idle code: code {self.idle}" + (f" '{name}'" if name != f"code {self.idle}" else
                                                     " (no code meaning says NOOP: the first code in use)")
        lines.append(("0", idle))
        unused = [i for i in range(len(self.code_names)) if i not in self.keyed]
        if unused:
            lines.append(("", f"no key: unused code{'s' * (len(unused) > 1)} {', '.join(map(str, unused))}"))
        return lines

    def _help_lines(self) -> list[tuple[str, str]]:
        return [
            ("arrows / WASD", "move (two keys = diagonal, none = stay)"),
            *self.code_key_lines(),
            ("Backspace", "reset"),
            ("Space", "pause"),
            ("Tab", "real game side by side (the dream starts from its screen; same actions)"),
            ("R", "re-sync: the dream restarts from the real game's current screen"),
            ("V", "record (mp4, or gif when record=*.gif)"),
            ("F12", "screenshot"),
            ("P", "give control back to the policy"),
            ("K", "keypoint overlay on/off (keypoint models)"),
            ("H", "this help"),
            ("Esc / Q", "quit"),
        ]

    def _draw_help(self) -> None:
        pg = self.pg
        sw, _ = self.screen.get_size()
        _, _, _, fh = self.frame_rect(0)
        overlay = pg.Surface((sw, fh), pg.SRCALPHA)
        overlay.fill((0, 0, 0, 200))
        self.screen.blit(overlay, (0, 0))
        lines = self._help_lines()
        col = max(self._text(k).get_width() for k, _ in lines) + 16
        ty = 8
        for key, what in lines:
            self.screen.blit(self._text(key, HUD_ACCENT), (10, ty))
            self.screen.blit(self._text(what), (10 + col, ty))
            ty += self.line_h

    def draw(self) -> None:
        """Draw frames, HUD and help into the window and show it."""
        self.screen.fill(HUD_BG)
        self._blit_frame(self.frame, 0)
        if self.show_keypoints:
            self._draw_keypoints(self.info.get("keypoints"), 0)
        if self.real is not None and self.real.frame is not None:
            self._blit_frame(self.real.frame, 1)
        self._draw_hud()
        if self.show_help:
            self._draw_help()
        self.pg.display.flip()

    def snapshot(self) -> np.ndarray:
        """The window as (H, W, 3) uint8."""
        w, h = self.screen.get_size()
        return np.frombuffer(self.pg.image.tobytes(self.screen, "RGB"), np.uint8).reshape(h, w, 3)
