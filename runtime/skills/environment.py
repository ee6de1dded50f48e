"""The environment a skill's child process gets: least privilege.

``exec`` commands and stdio MCP servers both start from the same small base of the
runtime's variables (where programs are, whose home, locale, temp folder, proxies), never
the rest (API keys above all). What may be added on top is the call's ``env`` (exec) or
the skill's ``requiredEnv`` (MCP), minus the variables that change how programs load code.
"""

from __future__ import annotations

MINIMAL_ENV_NAMES: tuple[str, ...] = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "TERM",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)

# Variables that change how every program loads or resolves code: a value meant for one
# program would silently alter another.
LOADER_ENV_NAMES = frozenset(
    {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "DYLD_LIBRARY_PATH",
        "NODE_OPTIONS",
        "NODE_PATH",
        "PYTHONPATH",
        "PYTHONHOME",
        "PERL5LIB",
        "RUBYLIB",
    }
)
