"""Where the live stages run: ``process`` (one child process each) or ``thread`` (in this process)."""

STAGE_MODES = ("process", "thread")
