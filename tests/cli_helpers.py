"""Shared by the CLI fault tests: the one-line, exit-2 error check (their `ckpt` fixture is in conftest.py)."""

from __future__ import annotations

from gdmcd_core.cli.main import main


def one_line_exit_2(capsys, argv: list[str], *needles: str) -> str:
    """Run `gdmcd argv`: exit status 2, exactly one stderr line, no traceback, holding every needle."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err[:2000]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[:2000]
    for n in needles:
        assert n in err, err[:2000]
    return err
