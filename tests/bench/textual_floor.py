"""The floor of a console's first frame: Python, Textual and httpx imported, a bare Textual app showing one
table row, in the same terminal as the console (bench_server.py starts it in tmux beside the console)."""

import httpx  # noqa: F401  (the remote console imports it too)
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header


class Floor(App):
    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Login", "Name")
        table.add_row("textual-ready", "the floor")


if __name__ == "__main__":
    Floor().run()
