"""The floors of a console's first frame, in the same terminal as the console (bench_server.py starts them in
tmux beside it): Python, Textual and http.client imported, a bare Textual app showing one table row; with a
store directory as argument, every file of that store read and each of its records parsed first (orjson),
the embedded console's floor (#18: "reading and parsing the store's files plus importing textual")."""

import http.client  # noqa: F401  (the remote console talks HTTP over the socket with it)
import sys
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header

RECORD = 9  # a record is "<crc32 hex8> <json>" (provtui.store.records): its JSON starts here


def parse_store(store: Path) -> int:
    import orjson

    records = 0
    for path in sorted(store.iterdir()):
        if path.is_file():
            for line in path.read_bytes().splitlines():
                if line.startswith(b"{", RECORD):
                    orjson.loads(line[RECORD:])
                    records += 1
    return records


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
    if len(sys.argv) > 1:
        parse_store(Path(sys.argv[1]))
    Floor().run()
