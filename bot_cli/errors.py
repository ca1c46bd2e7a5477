"""Errors an operator sees: one sentence naming what was wrong and what to do.

BotError            exit 1; the message is printed as is, never with a traceback
 +-- ConfigError    a config file or key is wrong (names the key and the file)
 +-- UsageError     the command line asked for something impossible
"""


class BotError(Exception):
    exit_code = 1


class ConfigError(BotError):
    pass


class UsageError(BotError):
    pass
