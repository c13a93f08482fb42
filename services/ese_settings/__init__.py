"""One way to configure every ese service: a table of options and a small resolver.

Each service lists its settings as `Option`s (field, environment variable, flags, converter,
help); its `Settings` dataclass holds the defaults. `resolve()` reads them with one set of
rules: a flag wins over its environment variable, which wins over the default; a blank value
counts as unset; an option marked `secret_file` may instead name a file in `<VAR>_FILE` (the
Docker-secrets convention of the official images). A converter turns the text into a value or
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
    # Also accept `<env>_FILE`: the path of a file holding the value (e.g. a Docker secret).
    secret_file: bool = False


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
        where = f"{option.env} or {option.env}_FILE" if option.secret_file else option.env
        parser.add_argument(
            *option.flags,
            dest=option.field,
            default=None,
            metavar=option.env,
            help=f"{option.help} [env {where}]",
        )
    return parser


def read_secret_file(variable: str, path: str) -> str:
    """The content of the file `path` named by `variable`, less one trailing newline.

    Like the official images: the newline that editors and `echo` add is not part of the
    secret; anything else is. An unreadable or empty file is a ConfigError.
    """
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            content = handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{variable}={path!r} cannot be read ({reason}); "
            "point it at a readable UTF-8 file that holds the value"
        ) from None
    if content.endswith("\r\n"):
        content = content[:-2]
    elif content.endswith("\n"):
        content = content[:-1]
    if not content.strip():
        # An empty token would silently mean "no token": refuse rather than open the door.
        raise ConfigError(
            f"{variable}={path!r} names an empty file; write the value into it, or unset {variable}"
        )
    return content


def _raw(
    option: Option, environ: Mapping[str, str], flag_value: str | None
) -> tuple[str, str] | None:
    """(text, source) of one option from its flag, variable or secret file; None when unset."""
    if flag_value is not None and flag_value.strip():
        return flag_value, option.flags[0]
    direct = environ.get(option.env, "")
    if option.secret_file:
        variable = f"{option.env}_FILE"
        path = environ.get(variable, "").strip()
        if path:
            if direct.strip():
                raise ConfigError(
                    f"both {option.env} and {variable} are set; set only one of them "
                    f"({variable} names a file holding the value, e.g. a Docker secret)"
                )
            return read_secret_file(variable, path), variable
    return (direct, option.env) if direct.strip() else None


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
        try:
            given = _raw(option, environ, flag_value)
            if given is not None:
                values[option.field] = option.convert(*given)
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
