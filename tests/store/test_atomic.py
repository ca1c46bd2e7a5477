"""Durable file primitives: modes of what we create, atomic replace, reading and tail scanning."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot_cli.store import StateDirError
from bot_cli.store.atomic import (
    append_durable,
    end_of_last_line,
    ensure_dir,
    open_file,
    read_range,
    replace_durable,
)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would leave new files world-readable, so modes are ours to set."""
    old = os.umask(0o000)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ensure_dir_creates_missing_dirs_0700(tmp_path: Path, loose_umask: None) -> None:
    """ensure_dir creates the directory (and missing parents) with mode 0700 for the leaf."""
    path = tmp_path / "a" / "state"

    ensure_dir(path)

    assert path.is_dir()
    assert mode(path) == 0o700


def test_ensure_dir_leaves_an_existing_dir_alone(tmp_path: Path) -> None:
    """An existing directory keeps the mode its owner chose."""
    path = tmp_path / "state"
    path.mkdir(mode=0o750)
    os.chmod(path, 0o750)

    ensure_dir(path)

    assert mode(path) == 0o750


def test_ensure_dir_rejects_a_file(tmp_path: Path) -> None:
    """A regular file where the directory should be raises StateDirError."""
    path = tmp_path / "state"
    path.write_text("x")

    with pytest.raises(StateDirError):
        ensure_dir(path)


def test_open_file_creates_0600(tmp_path: Path, loose_umask: None) -> None:
    """A file created by open_file is 0600 whatever the umask."""
    path = tmp_path / "f"

    os.close(open_file(path, os.O_RDWR))

    assert mode(path) == 0o600


def test_open_file_keeps_the_mode_of_an_existing_file(tmp_path: Path) -> None:
    """open_file does not chmod a file it did not create."""
    path = tmp_path / "f"
    path.write_text("keep")
    os.chmod(path, 0o640)

    os.close(open_file(path, os.O_RDWR))

    assert mode(path) == 0o640
    assert path.read_text() == "keep"


def test_append_durable_appends(tmp_path: Path) -> None:
    """append_durable adds bytes at the end of an O_APPEND file."""
    path = tmp_path / "f"
    path.write_bytes(b"one\n")
    fd = open_file(path, os.O_RDWR | os.O_APPEND)
    try:
        append_durable(fd, b"two\n")
    finally:
        os.close(fd)

    assert path.read_bytes() == b"one\ntwo\n"


def test_replace_durable_swaps_content_and_leaves_no_temp(
    tmp_path: Path, loose_umask: None
) -> None:
    """replace_durable installs new content 0600 and removes its temp file."""
    path = tmp_path / "journal"
    path.write_bytes(b"old")
    (tmp_path / ".journal.tmp").write_bytes(b"left by a crash")

    replace_durable(path, b"new")

    assert path.read_bytes() == b"new"
    assert mode(path) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["journal"]


def test_read_range_reads_to_end_of_file(tmp_path: Path) -> None:
    """read_range returns the asked bytes, fewer only at end of file."""
    path = tmp_path / "f"
    path.write_bytes(b"0123456789")
    fd = os.open(path, os.O_RDONLY)
    try:
        assert read_range(fd, 2, 3) == b"234"
        assert read_range(fd, 8, 100) == b"89"
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"", 0, id="empty file"),
        pytest.param(b"no newline", 0, id="no complete line"),
        pytest.param(b"a\n", 2, id="ends with newline"),
        pytest.param(b"a\nbc", 2, id="torn tail"),
        pytest.param(b"a\n" + b"x" * 10_000, 2, id="torn tail longer than a block"),
    ],
)
def test_end_of_last_line(tmp_path: Path, content: bytes, expected: int) -> None:
    """end_of_last_line finds the offset just past the last newline."""
    path = tmp_path / "f"
    path.write_bytes(content)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert end_of_last_line(fd, len(content)) == expected
    finally:
        os.close(fd)
