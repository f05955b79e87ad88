"""The one exception type that ``train.py`` turns into a one-line error and exit code 2."""


class TrainingInputError(Exception):
    """Bad data or bad hyperparameters: something the user must fix, not a bug.

    The message is logged as a single line; no traceback is shown.
    """


def one_line(exc):
    """Return the message of ``exc`` as one line.

    A ``DataLoader`` worker re-raises our exception in the main process with the worker's
    whole traceback as its message; keep only the original message in that case.
    """
    text = str(exc).strip()
    if "\n" in text:
        last = text.splitlines()[-1]
        marker = TrainingInputError.__name__ + ": "
        text = last.split(marker, 1)[1] if marker in last else last
    return text
