"""The worker pool: a supervisor process and one claim loop per child process."""
