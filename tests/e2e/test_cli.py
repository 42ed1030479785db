"""Command-line behaviour that needs no peer."""
import subprocess

from conftest import BIN


def run(*args):
    return subprocess.run([BIN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          timeout=30)


def test_unknown_command_is_a_usage_error_even_with_help():
    for args in (("bogus",), ("bogus", "--help"), ("--help", "bogus")):
        p = run(*args)
        assert p.returncode == 2, args
        assert "unknown command 'bogus'" in p.stderr
        assert p.stdout == ""


def test_help_on_a_command_prints_usage_and_succeeds():
    for args in (("--help",), ("sync", "--help"), ("validate", "-h")):
        p = run(*args)
        assert p.returncode == 0, args
        assert p.stdout.startswith("usage: tyk-gitops")
