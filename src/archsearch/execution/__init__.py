"""Where evaluations run: in this process, in local worker processes, or on Ray."""

from archsearch.execution.base import Executor, Outcome, SerialExecutor
from archsearch.execution.processes import ProcessExecutor

__all__ = ["Executor", "Outcome", "ProcessExecutor", "SerialExecutor"]
