"""One way to configure every ese service: a table of options and a small resolver.

Each service lists its settings as `Option`s (field, environment variable, flags, converter,
help); its `Settings` dataclass holds the defaults. `resolve()` reads them with one set of
rules: a flag wins over its environment variable, which wins over the default; a blank value
counts as unset. A converter turns the text into a value or
raises `ConfigError` with a one-line message naming where the value came from (the flag or the
variable the user actually set), so every service reports bad settings the same way.

WHY a table and this helper rather than pydantic-settings: the services need exact one-line
messages that name the flag or variable the user typed, flags spelled unlike their variables
(`--server` for REACT_APP_BE_SERVER), and the consumer falls back to a default with a note
instead of failing. pydantic's multi-line validation errors and its own CLI conventions would
have to be translated back at every point, and it would add a dependency to three images for
what is about a hundred lines here.
WHY a package of its own: each image installs only its own service (the server image copies
just services/ese_server and this package), and no service should import another one.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# (text as given, where it came from: a flag or a variable name) -> value; raises ConfigError.
Convert = Callable[[str, str], Any]


class ConfigError(ValueError):
    """A setting is invalid; the one-line message names it and says how to fix it."""


@dataclass(frozen=True)
class Option:
    """One setting: the Settings field it fills, its variable, its flags and its converter."""

    field: str
    env: str
    flags: tuple[str, ...]
    convert: Convert
    help: str


def text(raw: str, source: str) -> str:
    """The value with surrounding blanks removed."""
    return raw.strip()


def verbatim(raw: str, source: str) -> str:
    """The value exactly as given (passwords and tokens may contain any character)."""
    return raw


class OneLineParser(argparse.ArgumentParser):
    """argparse that raises ConfigError (one line) instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{message}; hint: run `{self.prog} --help` for the options")


def build_parser(
    prog: str, description: str, options: Sequence[Option], epilog: str | None = None
) -> argparse.ArgumentParser:
    """A parser with every option's flags; each flag defaults to None, so unset is visible."""
    parser = OneLineParser(prog=prog, description=description, epilog=epilog)
    for option in options:
        if not option.flags:
            continue
        parser.add_argument(
            *option.flags,
            dest=option.field,
            default=None,
            metavar=option.env,
            help=f"{option.help} [env {option.env}]",
        )
    return parser


def resolve(
    options: Sequence[Option],
    environ: Mapping[str, str],
    args: argparse.Namespace | None = None,
) -> tuple[dict[str, Any], list[ConfigError]]:
    """Converted values of the options that are set, and the errors of those that are invalid.

    `args` are the parsed flags (None when the service has none). Options left unset are
    missing from the values, so the Settings defaults apply.
    """
    values: dict[str, Any] = {}
    errors: list[ConfigError] = []
    for option in options:
        flag_value = getattr(args, option.field, None) if args is not None else None
        if flag_value is not None and flag_value.strip():
            raw, source = flag_value, option.flags[0]
        elif environ.get(option.env, "").strip():
            raw, source = environ[option.env], option.env
        else:
            continue
        try:
            values[option.field] = option.convert(raw, source)
        except ConfigError as exc:
            errors.append(exc)
    return values, errors


def load(
    options: Sequence[Option],
    environ: Mapping[str, str],
    parser: argparse.ArgumentParser | None = None,
    argv: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Parse `argv` (when the service has flags) and resolve; raise the first error."""
    args = parser.parse_args(list(argv) if argv is not None else []) if parser else None
    values, errors = resolve(options, environ, args)
    if errors:
        raise errors[0]
    return values
