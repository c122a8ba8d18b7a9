"""The explorer's tabs: each two panes' folders and cursors (ctrl+t, ctrl+w, 1-9 or alt+1-9), kept across restarts."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Static

from sdcore.sdpath import SdPath, display
from sdtui.screens.explorer_base import ExplorerBase
from sdtui.state import Tab
from sdtui.widgets.pane import Pane, Place

ALT_DIGITS_AS_READ = dict(zip(range(1, 10), ("inverted_exclamation_mark", "trade_mark_sign", "pound_sign", "cent_sign",
                                             "infinity", "section_sign", "pilcrow_sign", "bullet", "ª"), strict=True))
"""alt+1 to alt+9 as Textual reads them when the terminal sends ESC then the digit (tmux, xterm, most terminals without
the kitty keyboard protocol): it takes those bytes for WezTerm-on-macOS's Option+digit and gives the character that
types (¡ ™ £ ¢ ∞ § ¶ • ª). The tab keys are bound to these too; the help shows them as alt+N."""

History = tuple[list[Place], list[Place], list[Place], list[Place]]
"""A tab's back and forward stacks, left pane's then right's (kept while sdtui runs)."""


class TabActions(ExplorerBase):
    """One pair of panes shows the current tab; switching tabs opens the other tab's folders in them."""

    histories: list[History]

    def first_tab(self, start: SdPath, other: SdPath, restore: bool) -> Tab:
        """The tab to show first: the saved current one (`restore`: no folder was asked for), else one on
        `start` and `other` in place of it."""
        tabs = self.state.tabs
        self.state.current = min(max(self.state.current, 0), len(tabs) - 1) if tabs else 0
        if not (restore and tabs):
            fresh = Tab(_text(start), _text(other))
            if tabs:
                tabs[self.state.current] = fresh
            else:
                tabs.append(fresh)
        self.histories = [([], [], [], []) for _ in tabs]
        self.draw_tab_bar()
        return tabs[self.state.current]

    def keep_tab(self) -> None:
        """Note the current tab's folders, cursors and active pane, and save the state."""
        tab = self.state.tabs[self.state.current]
        for side in ("left", "right"):
            pane = self.query_one(f"#{side}", Pane)
            if pane.path is not None:
                setattr(tab, side, _text(pane.path))
                current = pane.file_list.current
                setattr(tab, f"{side}_cursor", current.name if current is not None else None)
        tab.active = self.active_id
        self.draw_tab_bar()
        self.state.save()

    def action_new_tab(self) -> None:
        """ctrl+t: a new tab on the same folders, after the current one."""
        self.keep_tab()
        tab = self.state.tabs[self.state.current]
        self.state.tabs.insert(self.state.current + 1, Tab(**vars(tab)))
        self.histories.insert(self.state.current + 1, ([], [], [], []))
        self._show(self.state.current + 1)

    def action_close_tab(self) -> None:
        """ctrl+w: close the current tab (the last one stays)."""
        if len(self.state.tabs) == 1:
            self.status("this is the only tab: q quits")
            return
        del self.state.tabs[self.state.current]
        del self.histories[self.state.current]
        self._show(min(self.state.current, len(self.state.tabs) - 1), keep=False)

    def action_switch_tab(self, number: int) -> None:
        """1-9, alt+1-9: show tab `number`."""
        if number > len(self.state.tabs):
            self.status(f"no tab {number}: ctrl+t opens a tab")
            return
        if number - 1 != self.state.current:
            self.keep_tab()
            self._show(number - 1)

    def _show(self, index: int, keep: bool = True) -> None:
        if keep and self.state.current < len(self.histories):
            self.histories[self.state.current] = self._history()
        self.state.current = index
        tab = self.state.tabs[index]
        history = self.histories[index]
        for n, side in enumerate(("left", "right")):
            pane = self.query_one(f"#{side}", Pane)
            pane.open(SdPath.parse_canonical(getattr(tab, side)), cursor_name=getattr(tab, f"{side}_cursor"), record=False)
            pane.back_stack, pane.forward_stack = list(history[2 * n]), list(history[2 * n + 1])
        target = self.query_one(f"#{tab.active if tab.active in ('left', 'right') else 'left'}", Pane)
        if self.has_class("-single"):
            target = self.query_one("#left", Pane)
        target.file_list.focus()
        self.draw_tab_bar()
        self.state.save()

    def _history(self) -> History:
        left, right = (self.query_one(f"#{s}", Pane) for s in ("left", "right"))
        return list(left.back_stack), list(left.forward_stack), list(right.back_stack), list(right.forward_stack)

    def draw_tab_bar(self) -> None:
        """The tab bar: shown while there are two tabs or more, the current one highlighted."""
        bar = self.query_one("#tabs", Static)
        tabs = self.state.tabs
        bar.display = len(tabs) > 1
        parts = []
        for n, tab in enumerate(tabs):
            shown = SdPath.parse_canonical(tab.right if tab.active == "right" else tab.left)
            text = f" {n + 1} {display(shown.name)} "
            parts.append(Content.styled(text, "reverse bold" if n == self.state.current else ""))
        bar.update(Content(" ").join(parts))


def _text(path: SdPath) -> str:
    return str(SdPath(path.device_id, path.path))
