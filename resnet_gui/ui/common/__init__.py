"""What every tab of the window uses: workers (tasks in threads), widgets, plots, images for Qt, the theme and
what a failure says in the window.
No feature package is imported from here."""
