"""Actions are the only code that changes state: access_* fetch with a permission check,
check_* validate input, do_* change state, commit and emit events."""
