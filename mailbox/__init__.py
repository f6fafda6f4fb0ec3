"""webpop's mail app. Named ``mailbox``, it shadows the standard library's
module of that name when run from the repository root, which is intended:
nothing in webpop uses the stdlib ``mailbox``."""
