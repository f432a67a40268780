"""The throwaway PostgreSQL (provtui.testing.postgres) and its fixtures: it answers on its socket and on TCP,
each test gets a database of its own, it runs as the postgres user under root, and a killed server restarts
with what was committed."""

from __future__ import annotations

import gc
import os
import pwd
import socket

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict

from provtui.testing import postgres as postgres_module
from provtui.testing.postgres import PostgresError, PostgresProcess, postgres_available

pytestmark = pytest.mark.skipif(not postgres_available(), reason="PostgreSQL is not installed")

USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


def dbname(url: str) -> str:
    return str(conninfo_to_dict(url)["dbname"])


def test_it_answers_on_its_unix_socket_and_on_tcp(postgres: PostgresProcess) -> None:
    assert postgres.url().startswith(f"postgresql://provtui@/postgres?host={postgres.directory}&port={postgres.port}")
    assert len(str(postgres.directory / f".s.PGSQL.{postgres.port}")) < 107  # type: ignore[operator]
    with psycopg.connect(postgres.url()) as socket_connection:
        row = socket_connection.execute("SELECT current_user, current_database(), inet_server_addr()").fetchone()
        assert row == ("provtui", "postgres", None)  # no server address: the Unix socket
    with psycopg.connect(postgres.tcp_url()) as tcp_connection:
        row = tcp_connection.execute("SELECT inet_server_addr()::text, inet_server_port()").fetchone()
        assert row == ("127.0.0.1/32", postgres.port)


def test_each_test_gets_a_fresh_empty_database(postgres: PostgresProcess, pg_url: str) -> None:
    other_url = postgres.create_database()
    assert other_url != pg_url
    with psycopg.connect(pg_url) as mine, psycopg.connect(other_url) as other:
        assert mine.execute(USER_TABLES).fetchone() == (0,) and other.execute(USER_TABLES).fetchone() == (0,)
        mine.execute("CREATE TABLE marker (n int)")
        mine.commit()
        assert other.execute(USER_TABLES).fetchone() == (0,)
        names = {mine.execute("SELECT current_database()").fetchone(), other.execute("SELECT current_database()").fetchone()}
        assert len(names) == 2
    postgres.drop_database(dbname(other_url))
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(other_url)


@pytest.mark.parametrize("run", [1, 2])
def test_a_table_made_by_another_test_is_not_there(pg_url: str, run: int) -> None:
    with psycopg.connect(pg_url) as connection:
        assert connection.execute(USER_TABLES).fetchone() == (0,)
        connection.execute("CREATE TABLE marker (n int)")


def test_a_database_name_is_quoted_in_its_url(postgres: PostgresProcess) -> None:
    url = postgres.create_database("with-dash and space")
    with psycopg.connect(url) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == ("with-dash and space",)
    postgres.drop_database("with-dash and space")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(postgres.url("no-such-database"))


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres user")
def test_under_root_the_server_runs_as_the_postgres_user(postgres: PostgresProcess) -> None:
    uid = pwd.getpwnam("postgres").pw_uid
    assert postgres.directory is not None and postgres.directory.stat().st_uid == uid
    assert all(path.stat().st_uid == uid for path in [postgres.data_dir, *postgres.data_dir.rglob("*")])
    status = open(f"/proc/{postgres.pid}/status").read()
    assert f"\nUid:\t{uid}\t{uid}\t" in status


def test_a_killed_server_restarts_with_what_was_committed() -> None:
    with PostgresProcess() as server:
        url = server.create_database()
        with psycopg.connect(url) as connection:
            connection.execute("CREATE TABLE kept (n int)")
            connection.execute("INSERT INTO kept SELECT generate_series(1, 1000)")
        open_connection = psycopg.connect(url)  # a session the crash cuts
        old_pid = server.pid
        server.kill()
        assert not server.running
        with pytest.raises(psycopg.OperationalError):
            open_connection.execute("SELECT 1")
        open_connection.close()
        server.restart()
        assert server.running and server.pid != old_pid
        assert "automatic recovery in progress" in server.log_text()  # a crash, not a clean shutdown
        with psycopg.connect(url) as connection:
            assert connection.execute("SELECT count(*), sum(n) FROM kept").fetchone() == (1000, 500500)
        server.restart()  # a running server: stopped, then started again
        with psycopg.connect(server.tcp_url(dbname(url))) as connection:
            assert connection.execute("SELECT count(*) FROM kept").fetchone() == (1000,)
        directory = server.directory
    assert directory is not None and not directory.exists() and not server.running


def test_the_server_stops_when_its_object_dies() -> None:
    server = PostgresProcess().start()
    directory, url = server.directory, server.url()
    del server
    gc.collect()
    assert directory is not None and not directory.exists()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2)


def test_without_postgresql_installed_it_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_module, "find_bin_dir", lambda: None)
    with pytest.raises(PostgresError, match="PostgreSQL is not installed"):
        PostgresProcess().start()


def test_a_port_taken_before_the_server_binds_it_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PostgresError, match="could not bind"):
            PostgresProcess(port=port).start()  # a port asked for is not replaced
        ports = iter([port])
        real_free_port = postgres_module.free_port
        monkeypatch.setattr(postgres_module, "free_port", lambda: next(ports, None) or real_free_port())
        with PostgresProcess() as server, psycopg.connect(server.tcp_url()) as connection:
            assert server.port != port and connection.execute("SELECT 1").fetchone() == (1,)
