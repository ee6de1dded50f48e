"""`perstack log`: a workspace's jobs, their events, checkpoints and summaries."""

from runtime.log.command import add_log_parser, run_log_command, show_log
from runtime.log.errors import LogError, NoJobsError, UnknownIdError
from runtime.log.reader import JobLog, WorkspaceLog
from runtime.log.stored import LoggedEvent

__all__ = [
    "JobLog",
    "LogError",
    "LoggedEvent",
    "NoJobsError",
    "UnknownIdError",
    "WorkspaceLog",
    "add_log_parser",
    "run_log_command",
    "show_log",
]
