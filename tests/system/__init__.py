"""System tests: the real CLI and daemon as subprocesses, real files, signals and inotify."""
