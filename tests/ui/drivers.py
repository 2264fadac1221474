"""How the UI tests read what a tab says, without reaching into its widgets: the insides are named here only,
so that a tab that changes its layout changes one helper, not every test."""


def outcome(train):
    """What the Train tab (or its monitor) says about the run or its settings: a Banner with kind(), text(),
    buttons() and isVisible()."""
    monitor = getattr(train, "monitor", train)
    return monitor.banner
