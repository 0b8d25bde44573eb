"""The pieces of ``serve --workers``: the sockets, the worker's spec, the command line."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import trio

from router.ops._cli import main
from router.ops._listeners import open_listeners, url_of
from router.ops._worker import WorkerSpec, watch_lifeline


def test_each_worker_gets_its_own_socket_on_one_port() -> None:
    per_worker = open_listeners(["127.0.0.1:0", "[::1]:0"], 3, 128)
    try:
        assert len(per_worker) == 3
        v4 = [sockets[0] for sockets in per_worker]
        assert len({s.fileno() for s in v4}) == 3  # three sockets ...
        assert len({s.getsockname() for s in v4}) == 1  # ... on one address
        assert all(s.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT) for s in v4)
        assert url_of(per_worker[0][1]).startswith("http://[::1]:")
        # A connection is queued on one of them before any worker runs.
        with socket.create_connection(v4[0].getsockname()):
            pass
    finally:
        for sockets in per_worker:
            for sock in sockets:
                sock.close()


def test_an_inherited_socket_is_shared_by_every_worker() -> None:
    with socket.socket() as inherited:
        inherited.bind(("127.0.0.1", 0))
        per_worker = open_listeners([f"fd://{inherited.fileno()}"], 2, 16)
        assert [s[0].fileno() for s in per_worker] == [inherited.fileno()] * 2
        per_worker[0][0].detach()  # the descriptor stays the test's to close


def test_a_port_in_use_fails_and_leaves_nothing_open() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        before = len(list(Path("/proc/self/fd").iterdir()))
        with pytest.raises(OSError, match="in use"):
            open_listeners(["127.0.0.1:0", f"127.0.0.1:{port}"], 2, 16)
        assert len(list(Path("/proc/self/fd").iterdir())) == before


def test_the_spec_survives_the_command_line() -> None:
    spec = WorkerSpec(2, 4, (5, 6), 7, ("server.workers",))
    assert WorkerSpec.decode(spec.encode()) == spec
    assert spec.status()["worker"]["index"] == 2


async def test_the_lifeline_ending_starts_the_drain() -> None:
    read, write = socket.socketpair()  # a stream that ends as the pipe would
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch_lifeline, read.detach(), stop)
        await trio.testing.wait_all_tasks_blocked()
        assert not stop.is_set()
        write.close()
    assert stop.is_set()


@pytest.mark.parametrize("count", ["0", "-1", "two"])
def test_workers_must_be_a_positive_number(
    count: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["serve", "--config", str(tmp_path / "none.toml"), "--workers", count])
    assert exit_.value.code == 2
    assert "--workers" in capsys.readouterr().err


def test_a_state_file_is_refused_with_several_workers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        f'[server]\nstate_file = "{tmp_path / "state.json"}"\n'
        '[providers.sim]\nkind = "simulated"\n[routes.chat]\nfallback = ["sim:echo"]\n'
    )
    assert main(["serve", "--config", str(config), "--workers", "2"]) == 1
    assert "server.state_file: cannot be used with several workers" in capsys.readouterr().err
